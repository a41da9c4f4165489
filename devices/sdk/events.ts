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
  /** Frames the gateway's acks covered, each counted once (a range ack counts its frames at once, even those that stay in the outbox behind an older unacked frame). */
  acked: number;
  /** Frames written again after a reconnect. */
  resent: number;
  /** Frames given up by whenFull 'drop-oldest'. */
  dropped: number;
  /** Frames the gateway refused for good (TIMESTAMP_OUT_OF_RANGE: a reading's time it cannot store; FRAME_TOO_LARGE) and this client dropped. */
  rejected: number;
  /** Connections opened after the first one. */
  reconnects: number;
  /** Frames no ack has covered yet. */
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
  /**
   * An ack released `frames` frames of boot `epoch` from the outbox; every frame of that epoch up to
   * and including `seq` is now acked. `epoch` is this client's, or an earlier boot's whose frames came
   * in `keptFrames`. A range ack for frames behind an unacked one releases nothing until that one is acked.
   */
  acked: [{ seq: number; frames: number; epoch: number }];
  /** whenFull 'drop-oldest' gave up `frames` unacked frames. */
  dropped: [{ frames: number }];
  /**
   * The gateway refused frame `seq` for good (TIMESTAMP_OUT_OF_RANGE: a reading's time is older than
   * its retention or past 2262; FRAME_TOO_LARGE: over the gateway's size limit): it is dropped, not
   * resent. Set the device's clock, or maxFrameBytes to the gateway's --max-frame-bytes.
   */
  rejected: [{ seq: number; frames: number }];
  /** Something failed; never thrown, and ignored when nobody listens. */
  error: [DeviceError];
  /**
   * The gateway sent a command (once per command id: a redelivery is answered from memory). Handlers
   * registered with onCommand() answer it; without any, answer with DeviceClient.sendResult().
   */
  command: [CommandFrame];
}
