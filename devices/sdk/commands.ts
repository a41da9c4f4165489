/**
 * Answers the gateway's commands for DeviceClient: "received" at once, then one final result per
 * command id, produced by the handler registered for the command's name (onCommand) or by the
 * application through sendResult().
 *
 * Commands are at least once (the gateway redelivers after a reconnect or a restart), so the last
 * MAX_REMEMBERED_COMMANDS ids are remembered with their final result (or as still running): a
 * repeated id is answered again from memory and never runs a handler twice. A final result that
 * could not go out (no connection) waits in the same entries and goes out after the next connect.
 * Past the bound the oldest entry is forgotten: its result, if it never went out, is lost, and a
 * redelivery of that id runs the handler again.
 */
import { CommandStatus, MAX_NAME_BYTES, type CommandFrame } from '../codec/types.js';

/** Gets the command's JSON arguments parsed (null when empty) and the frame; returns (or resolves to) the result value. */
export type CommandHandler = (args: unknown, command: CommandFrame) => unknown;

/** Command ids remembered with their result. */
export const MAX_REMEMBERED_COMMANDS = 256;
/** Largest result (UTF-8 JSON) a handler may return; a larger one fails the command. Leaves room under the gateway's 64 KiB frame limit. */
export const MAX_RESULT_BYTES = 60 * 1024;
/** Reasons (error messages) are cut to this many characters. */
const MAX_REASON_CHARS = 1024;

interface Entry {
  /** Undefined while running: no final result yet. */
  status: CommandStatus | undefined;
  payload: string;
  /** The final result was written to a connection. */
  sent: boolean;
}

/** Writes one command result frame if a connection is open; false otherwise. */
export type ResultWriter = (commandId: string, status: CommandStatus, payload: string) => boolean;

const utf8 = new TextEncoder();

/** A JSON string payload: the reason of a failed or rejected command. */
function reason(text: string): string {
  return JSON.stringify(text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS)}…` : text);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

export class CommandDesk {
  readonly #handlers = new Map<string, CommandHandler>();
  /** Oldest first (Map insertion order); a repeated id moves to the end. */
  readonly #recent = new Map<string, Entry>();
  readonly #write: ResultWriter;
  /** True when someone listens to the client's 'command' event. */
  readonly #hasListeners: () => boolean;

  constructor(write: ResultWriter, hasListeners: () => boolean) {
    this.#write = write;
    this.#hasListeners = hasListeners;
  }

  /** Registers (or replaces) the handler for command `name`. */
  register(name: string, handler: CommandHandler): void {
    if (typeof name !== 'string' || utf8.encode(name).byteLength > MAX_NAME_BYTES) {
      throw new TypeError(`onCommand(): "name" must be a string of at most ${MAX_NAME_BYTES} bytes in UTF-8, got ${typeof name === 'string' ? JSON.stringify(name) : String(name)}`);
    }
    if (typeof handler !== 'function') throw new TypeError(`onCommand(): "handler" must be a function, got ${typeof handler}`);
    this.#handlers.set(name, handler);
  }

  /**
   * A command arrived: answers "received", and for an id seen before also its final result if there
   * is one. Returns true for a new id: the caller emits 'command', then calls run().
   */
  receive(frame: CommandFrame): boolean {
    const id = frame.commandId;
    this.#write(id, CommandStatus.Received, '');
    const seen = this.#recent.get(id);
    if (seen !== undefined) {
      this.#recent.delete(id);
      this.#recent.set(id, seen);
      if (seen.status !== undefined) seen.sent = this.#write(id, seen.status, seen.payload) || seen.sent;
      return false;
    }
    if (this.#recent.size >= MAX_REMEMBERED_COMMANDS) this.#recent.delete(this.#recent.keys().next().value!);
    this.#recent.set(id, { status: undefined, payload: '', sent: false });
    return true;
  }

  /**
   * Produces the final result of a new command, unless one exists already (a 'command' listener
   * answered with sendResult()). Without a handler for its name the command is rejected, except when
   * no handler is registered at all and a 'command' listener is: then the application answers.
   */
  run(frame: CommandFrame): void {
    const id = frame.commandId;
    if (this.#recent.get(id)?.status !== undefined) return;
    if (frame.expiresAt !== 0 && frame.expiresAt < Date.now()) return this.#finish(id, CommandStatus.Failed, reason('expired'));
    const handler = this.#handlers.get(frame.name);
    if (handler === undefined) {
      if (this.#handlers.size === 0 && this.#hasListeners()) return;
      return this.#finish(id, CommandStatus.Rejected, reason(`unknown command "${frame.name}"`));
    }
    let args: unknown = null;
    try {
      if (frame.args !== '') args = JSON.parse(frame.args);
    } catch (err) {
      return this.#finish(id, CommandStatus.Rejected, reason(`arguments are not JSON: ${messageOf(err)}`));
    }
    let out: unknown;
    try {
      out = handler(args, frame);
    } catch (err) {
      return this.#finish(id, CommandStatus.Failed, reason(messageOf(err)));
    }
    if (!isThenable(out)) return this.#succeed(id, out);
    Promise.resolve(out).then(
      (value) => this.#succeed(id, value),
      (err: unknown) => this.#finish(id, CommandStatus.Failed, reason(messageOf(err))),
    );
  }

  /**
   * sendResult(): the first final result of a remembered, still running command is remembered (and
   * goes out after the next connect if no connection is open). Returns whether it was written now.
   */
  answer(commandId: string, status: CommandStatus, payload: string): boolean {
    const entry = this.#recent.get(commandId);
    if (entry === undefined || entry.status !== undefined || status === CommandStatus.Received) return this.#write(commandId, status, payload);
    entry.status = status;
    entry.payload = payload;
    entry.sent = this.#write(commandId, status, payload);
    return entry.sent;
  }

  /** A connection opened: writes every final result that has not gone out yet, oldest first. */
  flush(): void {
    for (const [id, e] of this.#recent) {
      if (e.status !== undefined && !e.sent) e.sent = this.#write(id, e.status, e.payload);
    }
  }

  #succeed(id: string, value: unknown): void {
    let text: string | undefined;
    try {
      text = JSON.stringify(value ?? null);
    } catch (err) {
      return this.#finish(id, CommandStatus.Failed, reason(`the result is not serializable as JSON: ${messageOf(err)}`));
    }
    if (text === undefined) return this.#finish(id, CommandStatus.Failed, reason(`the result is not serializable as JSON: a ${typeof value}`));
    const bytes = text.length > MAX_RESULT_BYTES / 3 ? utf8.encode(text).byteLength : text.length;
    if (bytes > MAX_RESULT_BYTES) return this.#finish(id, CommandStatus.Failed, reason(`the result is ${bytes} bytes of JSON, more than ${MAX_RESULT_BYTES}`));
    this.#finish(id, CommandStatus.Ok, text);
  }

  #finish(id: string, status: CommandStatus, payload: string): void {
    const entry = this.#recent.get(id);
    if (entry === undefined) {
      // Forgotten meanwhile (more than MAX_REMEMBERED_COMMANDS newer commands): best effort.
      this.#write(id, status, payload);
      return;
    }
    if (entry.status !== undefined) return; // the first final result wins
    entry.status = status;
    entry.payload = payload;
    entry.sent = this.#write(id, status, payload);
  }
}
