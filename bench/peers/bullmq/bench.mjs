// BullMQ end to end on the benchmark's Redis: add jobs (addBulk, 1,000 at a time) while a worker of
// concurrency 50 processes them; jobs/s from the first add to the last completion.
// Usage: node bench.mjs REDIS_PORT JOBS  -> prints {"jobs": N, "seconds": S, "jobs_per_s": R}
import { Queue, Worker } from "bullmq";

const port = Number(process.argv[2]);
const jobs = Number(process.argv[3]);
const connection = { host: "127.0.0.1", port };
const name = `bench-${process.pid}`;

const queue = new Queue(name, { connection });
let done = 0;
let finish;
const finished = new Promise((resolve) => (finish = resolve));
const worker = new Worker(name, async (job) => job.data.i, { connection, concurrency: 50 });
worker.on("completed", () => {
  done += 1;
  if (done === jobs) finish();
});
await worker.waitUntilReady();

const started = performance.now();
for (let start = 0; start < jobs; start += 1000) {
  const size = Math.min(1000, jobs - start);
  await queue.addBulk(Array.from({ length: size }, (_, k) => ({ name: "job", data: { i: start + k } })));
}
await finished;
const seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify({ jobs, seconds: Number(seconds.toFixed(3)), jobs_per_s: Number((jobs / seconds).toFixed(1)) }));
await worker.close();
await queue.obliterate({ force: true });
await queue.close();
