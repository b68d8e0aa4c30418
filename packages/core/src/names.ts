/**
 * Rules for tenant ids and stream ids. Tenant ids end up in broker subjects, routing keys and
 * metric labels, so they follow a strict grammar. Stream ids are data only (always bound
 * parameters), so any text round-trips except what PostgreSQL text cannot hold.
 */
export const TENANT_ID_RULE = 'tenant id must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$ (letters, digits, "_" and "-", at most 64)';
const TENANT_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** Stream ids are limited in UTF-8 bytes so they always fit a btree index entry. */
export const MAX_STREAM_ID_BYTES = 1024;
const encoder = new TextEncoder();

export function tenantIdProblem(tenantId: unknown): string | null {
  if (typeof tenantId !== 'string' || tenantId.length === 0) return 'tenant id is missing';
  if (!TENANT_ID.test(tenantId)) return `${TENANT_ID_RULE}; got ${preview(tenantId)}`;
  return null;
}

export function streamIdProblem(streamId: unknown): string | null {
  if (typeof streamId !== 'string' || streamId.length === 0) return 'stream id must be a non-empty string';
  if (streamId.includes('\u0000')) return 'stream id must not contain the NUL character (U+0000)';
  if (hasLoneSurrogate(streamId)) return 'stream id must be well-formed Unicode (no lone surrogates)';
  const bytes = streamId.length * 3 <= MAX_STREAM_ID_BYTES ? streamId.length : encoder.encode(streamId).length;
  if (bytes > MAX_STREAM_ID_BYTES) {
    return `stream id must be at most ${MAX_STREAM_ID_BYTES} bytes of UTF-8; got ${bytes} bytes`;
  }
  return null;
}

export function hasLoneSurrogate(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return true;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return true;
    }
  }
  return false;
}

export function preview(value: string, max = 40): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
}
