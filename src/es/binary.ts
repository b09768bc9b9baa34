/**
 * A `binary` field as Elasticsearch returns it in JSON, and as Kibana writes it: base64. Bad input
 * yields no bytes, which the caller's size or hash check then refuses.
 */
export function fromBase64(text: string): Uint8Array {
  let binary: string;
  try {
    binary = atob(text.replace(/\s+/g, ""));
  } catch {
    return new Uint8Array();
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
