// Reads one task back through every RPC that returns tasks, with grpc-js and protobufjs defaults,
// and reports which calls decoded it. Usage: node deep.mjs HOST:PORT TASK_ID
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
const [address, taskId] = process.argv.slice(2);
const tasks = new v1.TaskService(address, grpc.credentials.createInsecure());
const system = new v1.SystemService(address, grpc.credentials.createInsecure());
const call = (client, method, request) =>
  new Promise((resolve, reject) =>
    client[method](request, { deadline: Date.now() + 10000 }, (error, response) =>
      error ? reject(error) : resolve(response),
    ),
  );
const deep = (task) => Boolean(task && task.metadata && task.metadata.fields && task.metadata.fields.deep);

const report = {};
// Not the worker role: Register would assign it the pending task before ClaimTask could.
await call(system, "Register", { instance_id: "node-deep", roles: ["node"], max_tasks: 5 });
report.get = deep((await call(tasks, "GetTask", { task_id: taskId })).task);
report.list = (await call(tasks, "ListTasks", {})).tasks.some(deep);
report.claim = (await call(tasks, "ClaimTask", { worker_id: "node-deep" })).tasks.some(deep);
report.state = (await call(system, "GetState", { recent_events: 10 })).recent_events.some((e) => deep(e.task));
report.watch = await new Promise((resolve, reject) => {
  const stream = tasks.WatchTasks({ after_event_id: "0", task_id: taskId });
  stream.on("data", (response) => {
    stream.cancel();
    resolve(deep(response.event.task));
  });
  stream.on("error", (error) => {
    if (error.code !== grpc.status.CANCELLED) reject(error);
  });
});
console.log(JSON.stringify(report));
tasks.close();
system.close();
