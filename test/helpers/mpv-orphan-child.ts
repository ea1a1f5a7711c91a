// Run as a child process by test/mpv-ipc.test.ts: starts mpv through MpvIpc, prints its pid, then
// waits to be SIGKILLed, so the test can check that mpv does not outlive its parent.
import { MpvIpc } from '../../agent/player/mpv-ipc.js';
import { silentLogger } from '../../agent/core/log.js';

const ipc = new MpvIpc({ mpvPath: 'mpv', args: ['--vo=null', '--ao=null', '--idle=yes'], log: silentLogger() });
await ipc.start();
process.stdout.write(`${ipc.pid}\n`);
setInterval(() => {}, 1000);
