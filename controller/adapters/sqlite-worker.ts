// Entry point of the SQLite thread (started by SqliteStore): runs batches of store operations on a
// SqliteEngine and answers each batch's results in order, and checkpoints the WAL when asked.
// Messages: {type:'batch', ops} answered by {type:'results', results}; {type:'checkpoint'}
// answered by {type:'checkpointed'}; {type:'close'} answered by {type:'closed'}, after which the
// thread ends.
import { parentPort, workerData } from 'node:worker_threads';
import { fileIdentity, SqliteEngine, type BatchOp } from './sqlite-engine.ts';

const { file, identity, busyTimeoutMs } = workerData as { file: string; identity: string; busyTimeoutMs?: number };
// The store's other connection has this file open: a file made at the path since (the volume
// remounted, the file deleted or replaced) would be another database, and opening it beside the
// other connection's WAL could corrupt both.
if (fileIdentity(file) !== identity) throw new Error('the file at the state database path is not the one the store opened (moved, deleted or replaced)');
// SQLite's own checkpoints are off here too: one could copy the whole WAL with nothing written after
// it on this connection, and the event loop's next write would start the WAL over (a sync to disk).
const engine = new SqliteEngine(file, { ...(busyTimeoutMs === undefined ? {} : { busyTimeoutMs }), role: 'thread' });
const port = parentPort!;
port.on('message', (message: { type: 'batch'; ops: string } | { type: 'checkpoint' } | { type: 'close' }) => {
  if (message.type === 'batch') {
    port.postMessage({ type: 'results', results: JSON.stringify(engine.runBatch(JSON.parse(message.ops) as BatchOp[])) });
    return;
  }
  if (message.type === 'checkpoint') {
    // What it cannot copy now (pages a reader still needs) the next one copies. One that fails, or
    // whose restart write fails (the disk full, the file locked past the busy timeout), loses
    // nothing: the WAL keeps every commit, the next checkpoint tries again (meanwhile the next write
    // may start the WAL over, wherever it runs), and writes that fail for the same reason say so.
    try {
      engine.checkpoint();
    } catch {
      // answered as done all the same: the event loop's operations wait for the answer
    }
    port.postMessage({ type: 'checkpointed' });
    return;
  }
  engine.close();
  port.postMessage({ type: 'closed' });
  port.close();
});
