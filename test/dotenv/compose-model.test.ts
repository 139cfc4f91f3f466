import { describe, expect, it } from "vitest";
import { ComposeParseError, parseComposeEnv } from "./compose-model.js";

/** Expectations from shared/dotenv.md §2.1 and compose-go's quoted.env fixture. */
const parse = (src: string, env: Record<string, string> = {}): Record<string, string> =>
  Object.fromEntries(parseComposeEnv(src, env));

describe("compose-go model (dotenv.md §2.1)", () => {
  it("reads the file level: BOM, comments, blank lines, export, YAML style, spaces around =", () => {
    expect(parse("\ufeffA=1\n# c\n\n  # c2\nexport B=2\nC: 3\nD = 4\n")).toEqual({ A: "1", B: "2", C: "3", D: "4" });
  });

  it("cuts unquoted values at ' #' only, trims them and does not decode backslashes", () => {
    expect(parse("A=a #b\nB=a#b\nC=a\t#b\nD=  x y \t\nE=a\\nb\n")).toEqual({
      A: "a",
      B: "a#b",
      C: "a\t#b",
      D: "x y",
      E: "a\\nb",
    });
  });

  it("single quotes: verbatim except \\' ; multi-line; no interpolation", () => {
    expect(parse("A='a\\'b'\nB='a\\\\b'\nC='\\n'\nD='${X}$Y'\nE='l1\nl2'\n", { X: "x", Y: "y" })).toEqual({
      A: "a'b",
      B: "a\\\\b",
      C: "\\n",
      D: "${X}$Y",
      E: "l1\nl2",
    });
  });

  it("single quotes cannot end in a backslash", () => {
    expect(() => parse("A='abc\\'\n")).toThrow(ComposeParseError);
    // ...or it runs on to the next ' in the file, and the rest fails on the following line.
    expect(() => parse("K='abc\\'\nY=\"y\"\nZ='z'\n")).toThrow(/unexpected character/);
  });

  it("double quotes: \\\" and the C escapes, \\$, other pairs verbatim, then interpolation", () => {
    expect(parse('A="a\\"b"\nB="\\n\\t\\\\"\nC="\\x41\\u00e9\\c"\nD="\\$X"\nE="$X-${X}"\nF="\\0101"\n', { X: "x" })).toEqual({
      A: 'a"b',
      B: "\n\t\\",
      C: "\\x41\\u00e9\\c",
      D: "$X",
      E: "x-x",
      F: "A",
    });
  });

  it("interpolates: $$, defaults, unset → empty, earlier keys, literal $ before other characters", () => {
    expect(
      parse("A=$$\nB=${UNSET_X:-d}\nC=${UNSET_X-d}\nD=$UNSET_X.\nE=1\nF=$E${E}\nG=5$\nH=$(id)\nI=${E:+alt}\n"),
    ).toEqual({ A: "$", B: "d", C: "d", D: ".", E: "1", F: "11", G: "5$", H: "$(id)", I: "alt" });
  });

  it("${ without a valid name is an error (Invalid template)", () => {
    expect(() => parse('A="${"\n')).toThrow(/Invalid template/);
    expect(() => parse("A=${\n")).toThrow(/Invalid template/);
    expect(parse("A='${'\n")).toEqual({ A: "${" });
  });

  it("keys: bad characters and spaces are errors, a bare key inherits", () => {
    expect(() => parse("A'B=1\n")).toThrow(/unexpected character/);
    expect(() => parse("A B=1\n")).toThrow(/space/);
    expect(parse("A.b-c[0]=1\nINHERIT\n", { INHERIT: "from-env" })).toEqual({ "A.b-c[0]": "1", INHERIT: "from-env" });
  });

  it("after a closing quote, whitespace and a comment are fine; the last duplicate wins", () => {
    expect(parse("A='v' # c\nA=\"w\"   \nB=2\n")).toEqual({ A: "w", B: "2" });
  });

  it("reads compose-go's quoted.env fixture", () => {
    const src =
      "OPTION_A='1'\nOPTION_B='2'\nOPTION_C=''\nOPTION_D='\\n'\nOPTION_E=\"1\"\nOPTION_F=\"2\"\nOPTION_G=\"\"\n" +
      "OPTION_H=\"\\n\"\nOPTION_I = \"echo 'asd'\"\nOPTION_J = 'first line\nsecond line\nthird line\nand so on'\n" +
      'OPTION_Z = "last value"\n';
    expect(parse(src)).toEqual({
      OPTION_A: "1",
      OPTION_B: "2",
      OPTION_C: "",
      OPTION_D: "\\n",
      OPTION_E: "1",
      OPTION_F: "2",
      OPTION_G: "",
      OPTION_H: "\n",
      OPTION_I: "echo 'asd'",
      OPTION_J: "first line\nsecond line\nthird line\nand so on",
      OPTION_Z: "last value",
    });
  });

  it("reproduces the §3.1 observations for naive K='…'", () => {
    expect(() => parse("A='before'\nK='it's'\nY=\"y\"\n")).toThrow(/unexpected character/);
    expect(parse("K='x'\nEVIL='pwned'\n")).toHaveProperty("EVIL", "pwned");
    expect(parse("K='line1\r\nline2'\n")).toEqual({ K: "line1\r\nline2" });
  });
});
