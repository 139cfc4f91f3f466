import { describe, expect, it } from "vitest";
import { errnoOf, errnoText, readErrorStep, readErrorText } from "./errno.js";

const err = (code: string) => Object.assign(new Error("x"), { code });

describe("file errors in words", () => {
  it("name the errno, its meaning and the next step for the file's layout setting", () => {
    const setting = "auth.approle.secretIdFile";
    expect(readErrorText(err("EACCES"), setting)).toBe("EACCES: permission denied: run vault-render as the file's owner or chmod 0600 it");
    expect(readErrorText(err("EISDIR"), setting)).toBe("EISDIR: is a directory: the layout's auth.approle.secretIdFile must name a file, not a directory");
    expect(readErrorText(err("ENOENT"), setting)).toBe("ENOENT: no such file or directory: check the layout's auth.approle.secretIdFile (relative paths start at the layout's directory)");
    expect(readErrorText(err("EWHATEVER"))).toBe("EWHATEVER");
    expect(readErrorText(new Error("no code"))).toBe("error");
  });

  it("find the code through a wrapping error's cause, or take a code as it is", () => {
    const wrapped = new Error("cannot read", { cause: err("EIO") });
    expect(errnoOf(wrapped)).toBe("EIO");
    expect(errnoOf("EISDIR")).toBe("EISDIR");
    expect(errnoText("ENOENT")).toBe("ENOENT: no such file or directory");
    expect(readErrorStep("EMFILE")).toBe("raise the open-file limit (LimitNOFILE=)");
  });
});
