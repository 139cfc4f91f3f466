import { describe, expect, it } from "vitest";
import { count } from "./plural.js";

describe("count", () => {
  it("puts the noun in the number the count asks for", () => {
    expect([count(0, "error"), count(1, "error"), count(2, "error"), count(1, "pass", "passes"), count(3, "pass", "passes")]).toEqual(["0 errors", "1 error", "2 errors", "1 pass", "3 passes"]);
  });
});
