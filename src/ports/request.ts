/**
 * The request-reply port: one request on a subject, one answer back (the saga coordinator's nats://
 * branches). Adapter: `adapters/nats/request.ts`. Checked by test/ports/request.conformance.ts.
 *
 * Contract: `request` never throws for what the far side did: it resolves with the reply, or with
 * `timeout` (no answer within timeoutMs) or `unavailable` (no responder, connection down). It throws
 * KAPOK_SAGA_INVALID for a subject that is not one (wildcards, spaces) before anything is sent.
 * Header names are kept as given; a reply's headers come back with their first value.
 */
export type RequestOutcome =
  | { kind: 'reply'; data: Uint8Array; headers: Record<string, string> }
  | { kind: 'timeout' }
  | { kind: 'unavailable'; reason: string };

export interface RequestReply {
  request(
    subject: string,
    data: Uint8Array,
    o: { timeoutMs: number; headers?: Readonly<Record<string, string>> },
  ): Promise<RequestOutcome>;
  /** Waits for requests in flight (bounded), then disconnects. Idempotent. */
  close(): Promise<void>;
}

/** A subject a request may go to: tokens of letters, digits, _ and -, joined by dots. */
export function isRequestSubject(s: string): boolean {
  return /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(s) && s.length <= 256;
}
