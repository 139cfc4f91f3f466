import { describe, expect, it } from "vitest";
import { leaseIdsIn, tolerantJsonParse } from "./salvage.js";

describe("tolerantJsonParse", () => {
  it("parses valid JSON like JSON.parse, __proto__ included as a key", () => {
    const text = '{"a":[1,2.5,-3e2,true,false,null],"b":{"__proto__":"x","s":"q\\"\\u00e9"}}';
    expect(JSON.stringify(tolerantJsonParse(text))).toBe(JSON.stringify(JSON.parse(text)));
  });

  it("keeps the members completed before a truncation or damage, drops the cut one", () => {
    expect(JSON.stringify(tolerantJsonParse('{"a":{"x":1,"y":{"k":"v"},"z":{"k":"cu'))).toBe('{"a":{"x":1,"y":{"k":"v"},"z":{}}}');
    expect(JSON.stringify(tolerantJsonParse('{"a":[1,2,{"b":3}],"n":12'))).toBe('{"a":[1,2,{"b":3}]}');
    expect(JSON.stringify(tolerantJsonParse('{"a":1,"b":]2,"c":3}'))).toBe('{"a":1}');
    expect(tolerantJsonParse("garbage")).toBeNull();
  });

  it("finds every lease id in the text", () => {
    expect(leaseIdsIn('{"leases":{"db":{"leaseId":"database/creds/app/abc"}},"x":{"leaseId": "p\\/q"')).toEqual(["database/creds/app/abc", "p/q"]);
  });
});
