import type { Command } from "commander";
import type { CommandContext } from "./context.js";
import { commonSyncOptions, formatFor, levelFor } from "./context.js";
import type { WatchFactory } from "../core/watch/watch.js";

export function registerWatch(program: Command, ctx: CommandContext): void {
  program
    .command("watch")
    .description("keep public/ current as a long-running process: re-sync on layout edits, drift, intervals and lifecycles")
    .option("--interval <duration>", "re-read KV secrets this often (with ±10% jitter)", "5m")
    .option("--max-backoff <duration>", "longest wait between retries while Vault is unavailable", "5m")
    .option("--heal-interval <duration>", "how often managed files are compared with what was written (besides file events)", "10s")
    .option("--debounce <duration>", "wait for file events to settle", "300ms")
    .option("--no-hooks", "leave hooks pending instead of running them")
    .option("--lock-timeout <duration>", "how long a pass waits for another run's lock", "30s")
    .option("--metrics-file <path>", "write Prometheus metrics for node_exporter's textfile collector after each pass (atomic, 0644)")
    .action(async (_opts: unknown, cmd: Command) => {
      // Every duration is checked before anything starts.
      const { parseOptions, watchOptions } = await import("./options.js");
      const g = parseOptions(watchOptions, cmd.optsWithGlobals());
      const durations = {
        lockTimeoutMs: g.lockTimeout,
        intervalMs: g.interval,
        maxBackoffMs: g.maxBackoff,
        healIntervalMs: g.healInterval,
        debounceMs: g.debounce,
      };
      // Test seam: the first retry delay (normally 1 s), so a test can reach a long backoff at once.
      const firstBackoffMs = ctx.testHooks?.firstBackoffMs;
      const [{ Watcher }, chokidar] = await Promise.all([import("../core/watch/watch.js"), import("chokidar")]);
      const watchFiles: WatchFactory = (paths, onEvent) => {
        const w = chokidar.watch(paths, { ignoreInitial: true, atomic: true, persistent: true });
        w.on("all", (ev, file) => onEvent(ev, file));
        return { close: () => w.close() };
      };
      const watcher = new Watcher({
        ...commonSyncOptions(ctx, g),
        log: ctx.logger(levelFor(g, "info"), formatFor(g, ctx, "json")),
        noHooks: !g.hooks,
        ...durations,
        ...(firstBackoffMs ? { firstBackoffMs } : {}),
        ...(g.metricsFile !== undefined ? { metricsFile: g.metricsFile } : {}),
        watchFiles,
      });
      const stop = () => watcher.stop();
      const hup = () => watcher.reload();
      process.on("SIGTERM", stop);
      process.on("SIGINT", stop);
      process.on("SIGHUP", hup);
      try {
        ctx.setExit(await watcher.run());
      } finally {
        process.off("SIGTERM", stop);
        process.off("SIGINT", stop);
        process.off("SIGHUP", hup);
      }
    });
}
