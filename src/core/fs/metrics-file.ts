/**
 * The metrics file (`--metrics-file`), written for node_exporter's textfile collector: a hidden
 * temp in the same directory (the collector reads `*.prom` only), 0644 whatever the umask, fsync,
 * rename over the target, the directory fsynced — so a scrape sees the old file or the new one,
 * never half of one.
 */
import path from "node:path";
import { FILE_MODE, atomicWrite, syncDirs } from "./writer.js";

export async function writeMetricsFile(file: string, text: string): Promise<void> {
  await atomicWrite(file, Buffer.from(text), FILE_MODE);
  await syncDirs([path.dirname(file)]);
}
