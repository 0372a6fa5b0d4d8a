// A Node.js client of claudebench: registers, creates, claims, completes and watches through the
// real protos, and reports what it saw (including the gRPC status codes of refused calls) as JSON.
// Usage: node client.mjs HOST:PORT
import { fileURLToPath } from "node:url";
import path from "node:path";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const here = path.dirname(fileURLToPath(import.meta.url));
const protoRoot = path.resolve(here, "../../protos");
const definition = protoLoader.loadSync(
  ["claudebench/v1/tasks.proto", "claudebench/v1/system.proto"],
  { includeDirs: [protoRoot], keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true },
);
const v1 = grpc.loadPackageDefinition(definition).claudebench.v1;
const address = process.argv[2];
const tasks = new v1.TaskService(address, grpc.credentials.createInsecure());
const system = new v1.SystemService(address, grpc.credentials.createInsecure());

const call = (client, method, request) =>
  new Promise((resolve, reject) =>
    client[method](request, { deadline: Date.now() + 10000 }, (error, response) =>
      error ? reject(error) : resolve(response),
    ),
  );
const statusOf = async (promise) => {
  try {
    await promise;
    return "OK";
  } catch (error) {
    return grpc.status[error.code];
  }
};

// protobufjs defines the well-known google.protobuf types in camelCase whatever keepCase says:
// Struct/Value fields are stringValue, numberValue, ...
const report = {};
await call(system, "Register", { instance_id: "node-worker", roles: ["node"], max_tasks: 5 });
const created = (await call(tasks, "CreateTask", { text: "from node", priority: 0, metadata: { fields: { lang: { stringValue: "js" } } } })).task;
report.created = { id: created.id, priority: created.priority, status: created.status };
const claimed = (await call(tasks, "ClaimTask", { worker_id: "node-worker", max_tasks: 1 })).tasks;
report.claimed = claimed.map((t) => t.id);
const done = (await call(tasks, "CompleteTask", { task_id: created.id, worker_id: "node-worker", result: { stringValue: "ok" } })).task;
report.completed = { status: done.status, result: done.result.stringValue, lang: done.metadata.fields.lang.stringValue };

report.statuses = {
  unknown_task: await statusOf(call(tasks, "GetTask", { task_id: "t-none" })),
  empty_text: await statusOf(call(tasks, "CreateTask", { text: "" })),
  unregistered_claim: await statusOf(call(tasks, "ClaimTask", { worker_id: "nobody" })),
  not_holder: await statusOf(call(tasks, "CompleteTask", { task_id: created.id, worker_id: "other", error: "x" })),
  duplicate_id: await statusOf(
    call(tasks, "CreateTask", { text: "a", task_id: "node-dup" }).then(() => call(tasks, "CreateTask", { text: "b", task_id: "node-dup" })),
  ),
};

report.events = await new Promise((resolve, reject) => {
  const seen = [];
  const stream = tasks.WatchTasks({ after_event_id: "0", task_id: created.id });
  stream.on("data", (response) => {
    seen.push(response.event.type);
    if (seen.length === 3) {
      stream.cancel();
      resolve(seen);
    }
  });
  stream.on("error", (error) => {
    if (error.code !== grpc.status.CANCELLED) reject(error);
  });
});
console.log(JSON.stringify(report));
tasks.close();
system.close();
