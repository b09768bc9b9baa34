// The one `node:zlib` function the Worker uses (workerd implements it natively under nodejs_compat).
// Declared here rather than loading @types/node, whose globals collide with @cloudflare/workers-types.
declare module "node:zlib" {
  export function gunzipSync(buffer: Uint8Array, options?: { maxOutputLength?: number }): Uint8Array;
}
