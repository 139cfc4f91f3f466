import { describe, expect, it } from "vitest";
import { escapeHelp, escapeLabelValue, formatValue, renderExposition } from "./prom.js";

describe("prom exposition", () => {
  it("escapes label values: backslash, double quote, line feed (in that order, so nothing is escaped twice)", () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    expect(escapeLabelValue("plain/path.env")).toBe("plain/path.env");
    expect(escapeLabelValue("\\n")).toBe("\\\\n");
  });

  it("escapes HELP text: backslash and line feed, quotes kept", () => {
    expect(escapeHelp('say "hi"\\\nnext')).toBe('say "hi"\\\\\\nnext');
  });

  it("spells special values as the format does", () => {
    expect([NaN, Infinity, -Infinity, 0, 1.5, 1764650000].map(formatValue)).toEqual(["NaN", "+Inf", "-Inf", "0", "1.5", "1764650000"]);
  });

  it("renders HELP and TYPE once per family, then its samples; families without samples are left out", () => {
    const text = renderExposition([
      { name: "x_up", help: "Up.", type: "gauge", samples: [{ value: 1 }] },
      { name: "x_empty", help: "Nothing.", type: "gauge", samples: [] },
      { name: "x_file", help: "Per file.", type: "gauge", samples: [{ labels: { file: 'a"b' }, value: 0 }, { labels: { file: "c", dir: "d" }, value: 2 }] },
    ]);
    expect(text).toBe(['# HELP x_up Up.', "# TYPE x_up gauge", "x_up 1", "# HELP x_file Per file.", "# TYPE x_file gauge", 'x_file{file="a\\"b"} 0', 'x_file{file="c",dir="d"} 2', ""].join("\n"));
    expect(renderExposition([])).toBe("");
  });

  it("refuses invalid metric and label names and a family given twice (programming errors)", () => {
    expect(() => renderExposition([{ name: "1bad", help: "", type: "gauge", samples: [{ value: 1 }] }])).toThrow(/metric name/);
    expect(() => renderExposition([{ name: "ok", help: "", type: "gauge", samples: [{ labels: { "a-b": "x" }, value: 1 }] }])).toThrow(/label name/);
    expect(() => renderExposition([{ name: "ok", help: "", type: "gauge", samples: [{ labels: { __name__: "x" }, value: 1 }] }])).toThrow(/label name/);
    const f = { name: "ok", help: "", type: "gauge" as const, samples: [{ value: 1 }] };
    expect(() => renderExposition([f, f])).toThrow(/twice/);
  });
});
