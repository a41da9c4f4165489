import type { CommandFrame } from '../codec/types.js';
import type { DeviceError } from './errors.js';

export interface DisconnectInfo {
  /** WebSocket close code; 1006 when the connection failed or dropped; the HTTP status when the upgrade was refused. */
  code: number;
  reason: string;
  willReconnect: boolean;
}

export interface DeviceClientStats {
  /** Telemetry frames written to the gateway for the first time. */
  sent: number;
  /** Frames released by the gateway's acks. */
  acked: number;
  /** Frames written again after a reconnect. */
  resent: number;
  /** Frames given up by whenFull 'drop-oldest'. */
  dropped: number;
  /** Connections opened after the first one. */
  reconnects: number;
  /** Frames waiting for an ack (the outbox). */
  unacked: number;
  /** Readings waiting in the open batch (not yet a frame). */
  pendingReadings: number;
}

/** Event name → listener arguments. */
export interface DeviceClientEvents {
  /** A connection opened (after the unacked frames were written again). */
  connected: [];
  /** A connection or a connection attempt ended. */
  disconnected: [DisconnectInfo];
  /** A cumulative ack released `frames` frames, up to and including `seq`. */
  acked: [{ seq: number; frames: number }];
  /** whenFull 'drop-oldest' gave up `frames` unacked frames. */
  dropped: [{ frames: number }];
  /** Something failed; never thrown, and ignored when nobody listens. */
  error: [DeviceError];
  /** The gateway sent a command; answer with DeviceClient.sendResult(). */
  command: [CommandFrame];
}
