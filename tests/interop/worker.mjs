// A small Node.js worker over the Work stream: registers, says hello, completes every task pushed
// to it (result: the task's text upper-cased) until it has done COUNT, then closes its side and
// reports the ids and acks it saw as JSON. Usage: node worker.mjs HOST:PORT WORKER_ID COUNT
import { fileURLToPath } from "node:url";
import path from "node:path";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const here = path.dirname(fileURLToPath(import.meta.url));
const definition = protoLoader.loadSync(
  ["claudebench/v1/tasks.proto", "claudebench/v1/system.proto"],
  { includeDirs: [path.resolve(here, "../../protos")], keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true },
);
const v1 = grpc.loadPackageDefinition(definition).claudebench.v1;
const [address, workerId, countText] = process.argv.slice(2);
const count = Number(countText);
const tasks = new v1.TaskService(address, grpc.credentials.createInsecure());
const system = new v1.SystemService(address, grpc.credentials.createInsecure());

await new Promise((resolve, reject) =>
  system.Register({ instance_id: workerId, roles: ["worker"], max_tasks: 2 }, (error) => (error ? reject(error) : resolve())),
);
const report = { hello: null, tasks: [], acks: [] };
const stream = tasks.Work();
stream.write({ hello: { worker_id: workerId, capacity: 2 } });
stream.on("data", (message) => {
  if (message.kind === "ack" && !message.ack.task_id) {
    report.hello = "accepted";
    console.error("ready");  // the test creates tasks once the stream is there
  } else if (message.kind === "task") {
    report.tasks.push(message.task.id);
    const result = { stringValue: message.task.text.toUpperCase() };
    stream.write({ complete: { task_id: message.task.id, worker_id: workerId, result } });
  } else if (message.kind === "ack") {
    report.acks.push({ task_id: message.ack.task_id, code: message.ack.code, status: message.ack.task?.status });
    if (report.acks.length === count) stream.end();
  }
});
stream.on("error", (error) => {
  console.error(error);
  process.exit(1);
});
stream.on("end", () => {
  console.log(JSON.stringify(report));
  process.exit(0);
});
