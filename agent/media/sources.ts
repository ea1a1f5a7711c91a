import { lookup as dnsLookup } from 'node:dns/promises';
import type { FileHandle } from 'node:fs/promises';
import { open, realpath } from 'node:fs/promises';
import { BlockList, isIP } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Where media may come from (issue 10 item 5). Whoever can publish an assignment names the URLs,
// so a URL must not let them read the box's own files or reach the box's LAN: `file://` only
// below the configured media roots, http(s) only to public addresses unless a host is allowed.

export interface SourcePolicy {
  /** Absolute directories `file://` sources must resolve into (after symlinks). */
  fileRoots: readonly string[];
  /** Host names, IPs or CIDRs that may resolve to private/loopback/link-local addresses (a LAN media server). */
  allowHosts: readonly string[];
}

/** A source refused by the policy: a clear reason for the operator, never a probe result. */
export class SourceRefused extends Error {}

export type Lookup = (host: string) => Promise<Array<{ address: string; family: number }>>;

const systemLookup: Lookup = (host) => dnsLookup(host, { all: true, verbatim: true });

/** Addresses a media URL may not reach unless allowed: the box itself, its LAN, and what is not unicast. */
const NOT_PUBLIC = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local (and cloud metadata services)
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) NOT_PUBLIC.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128], // unspecified
  ['::1', 128],
  ['fc00::', 7], // ULA
  ['fe80::', 10], // link-local
  ['fec0::', 10], // old site-local
  ['ff00::', 8], // multicast
] as const) NOT_PUBLIC.addSubnet(net, bits, 'ipv6');

/** True for an address a media download may not reach without `allowHosts`. */
export function isNotPublic(address: string): boolean {
  const v4 = embeddedV4(address);
  if (v4) return NOT_PUBLIC.check(v4, 'ipv4');
  const family = isIP(address);
  if (family === 0) return true;
  return NOT_PUBLIC.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) IPv6 address. */
function embeddedV4(address: string): string | undefined {
  if (isIP(address) !== 6) return undefined;
  const m = /^(?:::ffff:|64:ff9b::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(address);
  if (!m) return undefined;
  if (m[1]) return m[1];
  const hi = parseInt(m[2]!, 16);
  const lo = parseInt(m[3]!, 16);
  return [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
}

/** An allowHosts list as a matcher: exact host names (case-insensitive), IPs and CIDRs. */
export function hostAllowList(entries: readonly string[]): { host(name: string): boolean; address(ip: string): boolean } {
  const names = new Set<string>();
  const nets = new BlockList();
  for (const e of entries) {
    const [ip, bits] = e.split('/');
    const family = isIP(ip ?? '');
    if (family !== 0) nets.addSubnet(ip!, bits === undefined ? (family === 4 ? 32 : 128) : Number(bits), family === 4 ? 'ipv4' : 'ipv6');
    else names.add(e.toLowerCase().replace(/\.$/, ''));
  }
  return {
    host: (name) => names.has(name.toLowerCase().replace(/\.$/, '')),
    address: (ip) => {
      const v4 = embeddedV4(ip);
      const family = isIP(v4 ?? ip);
      return family !== 0 && nets.check(v4 ?? ip, family === 4 ? 'ipv4' : 'ipv6');
    },
  };
}

/**
 * Refuses an http(s) URL whose host resolves (any of its addresses) to a non-public address,
 * unless the host name or every such address is allowed. Checked before each request, so before
 * each redirect too. The resolved address is never part of the reason (it would map the LAN).
 */
export async function checkHttpTarget(url: URL, policy: SourcePolicy, lookup: Lookup = systemLookup): Promise<void> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new SourceRefused(`unsupported URL scheme: ${url.protocol}`);
  const allow = hostAllowList(policy.allowHosts);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (allow.host(host)) return;
  const addrs = isIP(host) !== 0 ? [{ address: host }] : await lookup(host);
  // A name that resolves to nothing is a network failure, reported by the fetch as such.
  refuseNotPublic(url.hostname, addrs, allow);
}

function refuseNotPublic(hostname: string, addrs: ReadonlyArray<{ address: string }>, allow: ReturnType<typeof hostAllowList>): void {
  for (const a of addrs) {
    if (isNotPublic(a.address) && !allow.address(a.address)) {
      throw new SourceRefused(`refused: ${hostname} is not a public address (loopback, private or link-local); allow it in media.allowHosts`);
    }
  }
}

/** node:net's `lookup` option: (hostname, options, callback), with `all` when it tries several addresses. */
export type ConnectLookup = (
  hostname: string,
  options: { family?: number | string; all?: boolean },
  callback: (err: Error | null, address: string | Array<{ address: string; family: number }>, family?: number) => void,
) => void;

/**
 * The DNS answer a connection actually uses, checked by the same rule as checkHttpTarget: the
 * name is resolved once more at connect time and the socket goes to what this returns, so a
 * name that answered a public address to the check and a private one now (DNS rebinding) is
 * refused here, not connected.
 */
export function checkedLookup(policy: SourcePolicy, lookup: Lookup = systemLookup): ConnectLookup {
  const allow = hostAllowList(policy.allowHosts);
  return (hostname, options, callback) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : Number(options.family ?? 0);
    const answer = (all: Array<{ address: string; family: number }>): Array<{ address: string; family: number }> => {
      const addrs = all.filter((a) => family === 0 || a.family === family);
      if (!allow.host(hostname.replace(/^\[(.*)\]$/, '$1'))) refuseNotPublic(hostname, addrs, allow);
      if (addrs.length === 0) throw Object.assign(new Error(`${hostname}: no address`), { code: 'ENOTFOUND' });
      return addrs;
    };
    lookup(hostname).then(
      (all) => {
        let addrs: Array<{ address: string; family: number }>;
        try {
          addrs = answer(all);
        } catch (e) {
          return callback(e as Error, '');
        }
        if (options.all) callback(null, addrs);
        else callback(null, addrs[0]!.address, addrs[0]!.family);
      },
      (e: unknown) => callback(e as Error, ''),
    );
  };
}

/**
 * Opens a `file://` source for reading if it lies inside one of the roots once every symlink is
 * resolved. The check is lexical first, so nothing outside the roots is even looked at (a
 * "missing" vs "outside" answer would tell which files exist), then on the opened descriptor,
 * so a symlink swapped between the check and the open cannot escape.
 */
export async function openConfined(url: string, roots: readonly string[]): Promise<{ fh: FileHandle; file: string }> {
  const outside = new SourceRefused('refused: file:// source outside media.fileRoots');
  let file: string;
  try {
    file = path.resolve(fileURLToPath(url));
  } catch {
    throw new SourceRefused('refused: not a local file:// URL');
  }
  const real = await realRoots(roots);
  if (!roots.some((r) => within(file, path.resolve(r))) && !real.some((r) => within(file, r))) throw outside;
  const fh = await open(file, 'r');
  try {
    const opened = await realpath(`/proc/self/fd/${fh.fd}`).catch(() => realpath(file));
    if (!real.some((r) => within(opened, r))) throw outside;
    return { fh, file };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

async function realRoots(roots: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const r of roots) {
    if (!path.isAbsolute(r)) continue;
    // A root that does not exist (yet: an unplugged USB stick) holds nothing.
    const rp = await realpath(r).catch(() => undefined);
    if (rp) out.push(rp);
  }
  return out;
}

function within(file: string, root: string): boolean {
  const rel = path.relative(root, file);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}
