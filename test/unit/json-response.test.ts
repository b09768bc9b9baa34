import { describe, expect, it } from "vitest";
import { agentJsonText } from "../../src/http/json-response";

const gzipRequest = new Request("http://fleet/", { headers: { "Accept-Encoding": "gzip" } });
const encodingOf = (text: string) => agentJsonText(gzipRequest, text).headers.get("Content-Encoding");

describe("agentJsonText", () => {
  it("gzips above 1 KiB counted in UTF-8 bytes, not characters", () => {
    expect(encodingOf(JSON.stringify("a".repeat(1022)))).toBeNull(); // 1,024 bytes
    expect(encodingOf(JSON.stringify("a".repeat(1023)))).toBe("gzip");
    expect(encodingOf(JSON.stringify("\u00e9".repeat(511)))).toBeNull(); // 1,024 bytes in 513 characters
    expect(encodingOf(JSON.stringify("\u00e9".repeat(512)))).toBe("gzip"); // 1,026 bytes in 514 characters
  });

  it("answers the same text, compressed or not", async () => {
    const text = JSON.stringify({ note: "\u00e9t\u00e9 ".repeat(400) });
    const zipped = agentJsonText(gzipRequest, text);
    const plain = agentJsonText(new Request("http://fleet/", { headers: { "Accept-Encoding": "gzip, deflate" } }), text);
    expect(plain.headers.get("Content-Encoding")).toBeNull();
    expect(await plain.text()).toBe(text);
    expect(await new Response(zipped.body!.pipeThrough(new DecompressionStream("gzip"))).text()).toBe(text);
  });
});
