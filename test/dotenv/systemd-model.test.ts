import { describe, expect, it } from "vitest";
import { SystemdEinvalError, loadSystemdEnvFile } from "./systemd-model.js";

/** Expectations from shared/dotenv.md §2.4 and systemd's test-env-file.c (load_env_file cases). */
const load = (src: string | Buffer): Record<string, string> => Object.fromEntries(loadSystemdEnvFile(src));

describe("systemd EnvironmentFile= model (dotenv.md §2.4)", () => {
  it("test-env-file.c env_file_1: continuations, escapes, keyless lines, a final backslash", () => {
    const src = "a=a\nb=b\\\nc\nd=d\\\ne\\\nf\ng=g\\ \nh=h\ni=i\\";
    expect(loadSystemdEnvFile(src)).toEqual(
      new Map([
        ["a", "a"],
        ["b", "bc"],
        ["d", "def"],
        ["g", "g "],
        ["h", "h"],
        ["i", "i"],
      ]),
    );
  });

  it("test-env-file.c env_file_2, 3, 4, 5", () => {
    expect(load("a=a\\\n")).toEqual({ a: "a" });
    expect(
      load('#SPAMD_ARGS="-d --socketpath=/var/lib/bulwark/spamd \\\n#--nouser-config                                     \\\nnormal=line'),
    ).toEqual({});
    expect(
      load('# Generated\n\nHWMON_MODULES="coretemp f71882fg"\n\n# For compatibility reasons\n\nMODULE_0=coretemp\nMODULE_1=f71882fg'),
    ).toEqual({ HWMON_MODULES: "coretemp f71882fg", MODULE_0: "coretemp", MODULE_1: "f71882fg" });
    expect(load("a=\nb=")).toEqual({ a: "", b: "" });
  });

  it("quotes: segments concatenate, the first unquoted character switches to verbatim", () => {
    expect(load("A='it'\"'\"'s'\n")).toEqual({ A: "it's" });
    expect(load("A='it'\\''s'\n")).toEqual({ A: "it''s'" });
    expect(load("A='v' #c\n")).toEqual({ A: "v#c" });
    expect(load("A='l1\nl2'\nB=\"x\\\"y\\$z\\`w\\\\v\\q\"\n")).toEqual({ A: "l1\nl2", B: 'x"y$z`w\\v\\q' });
  });

  it("no inline comments, no export, ; and # comments, CR is a newline, last duplicate wins", () => {
    expect(load("A=v #x\nexport B=1\n;C=1\n#D=1\nE=1\rF=2\nA=w\n")).toEqual({ A: "w", E: "1", F: "2" });
  });

  it("stops at NUL, and rejects the whole file for invalid UTF-8 or a noncharacter", () => {
    expect(load(Buffer.from("A='a\0b'\nY='y'\n"))).toEqual({ A: "a" });
    expect(() => load(Buffer.from([0x41, 0x3d, 0x66, 0xff, 0x0a]))).toThrow(SystemdEinvalError);
    expect(() => load("A='x\ufdd0'\n")).toThrow(SystemdEinvalError);
    expect(() => load("A='\uffff'\n")).toThrow(SystemdEinvalError);
    expect(load("A='\ufeffbom'\n")).toEqual({ A: "\ufeffbom" }); // the code accepts U+FEFF
  });
});
