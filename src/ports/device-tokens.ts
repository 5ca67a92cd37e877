import type { AuditTrail } from './audit.js';
import type { InferencePort } from './inference.js';
import type { MqttPort } from './mqtt.js';

/**
 * Ports one capability offers another, handed over by the wiring point (src/app.ts): a provider
 * returns them in `Capability.provides`, later capabilities find them in `CapabilityContext.ports`.
 */

/** Device tokens (issued by the gm capability), as the MQTT intake and HTTP APIs check them. */
export interface DeviceTokenPort {
  /**
   * The token's device, its group and the vehicle id bound at its registration, if the token
   * verifies and the device is active; throws (a 401/403 KapokError) otherwise.
   */
  verify(token: string): Promise<{ device: string; group: string; vehicle: string; expiresAt: number }>;
  /**
   * Whether a device whose token was verified earlier is still registered and active: a store lookup,
   * no signature check (that was done once by verify), so it is cheap enough to repeat per session.
   */
  active(device: string): Promise<boolean>;
  /**
   * A device's telemetry payload as published: the plaintext when its group (from its verified token)
   * is protected (SM4-GCM; throws when tampered, moved to another topic or not sealed), or the
   * payload itself otherwise.
   */
  openPayload(device: string, group: string, topic: string, payload: Buffer): Promise<Buffer>;
  /**
   * Called with a device id as soon as this process revokes it, as soon as the gm.device.revoked
   * event of another instance or `kapok device revoke` arrives (docs/events.md), and, as the
   * fallback when the event bus is down, within gm.revocationPollMs (a Store poll while anyone
   * listens). May be called more than once for one revocation: listeners must be idempotent.
   * Returns an unsubscribe function.
   */
  onRevoked(listener: (device: string) => void): () => void;
}

export interface SharedPorts {
  /** The audit trail (the audit capability offers it, first of all; absent when audit is disabled). */
  audit?: AuditTrail;
  deviceTokens?: DeviceTokenPort;
  /** MQTT taps and publishing (edge offers it; v2x uses it). */
  mqtt?: MqttPort;
  /** Running a model (inference offers it; the jobs `inference` executor uses it). */
  inference?: InferencePort;
}
