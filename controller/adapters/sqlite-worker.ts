// Entry point of the SQLite thread (started by SqliteStore): runs batches of store operations on a
// SqliteEngine and answers each batch's results in order. Messages: {type:'batch', ops} answered
// by {type:'results', results}; {type:'close'} answered by {type:'closed'}, after which the
// thread ends.
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteEngine, type BatchOp } from './sqlite-engine.ts';

const { file, busyTimeoutMs } = workerData as { file: string; busyTimeoutMs?: number };
const engine = new SqliteEngine(file, busyTimeoutMs === undefined ? {} : { busyTimeoutMs });
const port = parentPort!;
port.on('message', (message: { type: 'batch'; ops: string } | { type: 'close' }) => {
  if (message.type === 'batch') {
    port.postMessage({ type: 'results', results: JSON.stringify(engine.runBatch(JSON.parse(message.ops) as BatchOp[])) });
    return;
  }
  engine.close();
  port.postMessage({ type: 'closed' });
  port.close();
});
