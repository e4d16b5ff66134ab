// Entry point: register the views and start routing.

import { route, start } from "./router.js";
import { jobsView } from "./views/jobs.js";
import { jobView } from "./views/job.js";
import { traceView } from "./views/trace.js";
import { statsView } from "./views/stats.js";
import { logsView } from "./views/logs.js";

route("/jobs", jobsView, "jobs");
route("/jobs/:id", jobView, "jobs");
route("/traces/:traceId", traceView, "jobs");
route("/stats", statsView, "stats");
route("/logs", logsView, "logs");

start(document.getElementById("main"));
