import { lookup as dnsLookup } from 'node:dns/promises';
import type { Lookup } from '../../agent/media/sources.js';

/**
 * The DNS a rebinding attacker runs, as an injectable resolver: the first answer for each name is
 * public (TEST-NET-3, 203.0.113.7), every later one what the system resolver says (127.0.0.1 for
 * `localhost`). `asked` lists the names asked, in order.
 */
export function rebinding(): { lookup: Lookup; asked: string[] } {
  const asked: string[] = [];
  const lookup: Lookup = async (host) => {
    asked.push(host);
    if (asked.filter((h) => h === host).length === 1) return [{ address: '203.0.113.7', family: 4 }];
    return dnsLookup(host, { all: true, verbatim: true });
  };
  return { lookup, asked };
}
