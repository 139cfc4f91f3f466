// Loaded with `node --import bench/rss-hook.js …` by the benchmark: writes this process's peak RSS
// (kB, getrusage ru_maxrss) to $VR_BENCH_RSS_FILE when it exits.
import { writeFileSync } from "node:fs";

process.on("exit", () => {
  if (process.env.VR_BENCH_RSS_FILE) writeFileSync(process.env.VR_BENCH_RSS_FILE, String(process.resourceUsage().maxRSS));
});
