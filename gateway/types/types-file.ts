/**
 * The gateway's device types file (--types / GATEWAY_TYPES; default: the built-in demo types):
 * read and checked at start (a bad file stops the start), then watched and hot-reloaded. A change
 * is noticed by fs.watch on the file's folder (editors often replace a file rather than write it,
 * which ends a watch on the file itself), debounced, with a periodic stat as the fallback where
 * fs.watch says nothing (network and container file systems). A reload that fails keeps the
 * types in force and logs one line saying why (TYPES_INVALID, the file, the path inside it and
 * what is wrong); every reload and failure is counted for /metrics.
 */
import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deviceTypes, useDeviceTypes, type DeviceTypeSpec } from '../../devices/device-types.js';
import { describeProblems, parseDeviceTypes } from '../../devices/types/parse.js';
import { typeRulesOf } from '../alarms/rules.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log.js';

/** The demo types shipped with the package (dist/devices/types/demo.json next to the built code). */
export const DEMO_TYPES_FILE = fileURLToPath(new URL('../../devices/types/demo.json', import.meta.url));

/** A types file that cannot be read or is not valid: the code says which. */
export class TypesFileError extends GatewayError {
  override name = 'TypesFileError';
  constructor(code: 'TYPES_UNREADABLE' | 'TYPES_INVALID', message: string) {
    super(code, message);
  }
}

export interface TypesFileOptions {
  /** Changes within this many ms make one reload. */
  debounceMs?: number;
  /** How often the file's stat is compared, in case fs.watch misses a change. */
  pollMs?: number;
  /** False: notice changes by polling alone (where fs.watch is known not to work; tests of the fallback). */
  watch?: boolean;
}

export type TypesListener = (types: readonly DeviceTypeSpec[]) => void;

/** Reads and checks a types file; throws TypesFileError naming the file. */
export function readTypesFile(path: string): DeviceTypeSpec[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TypesFileError('TYPES_UNREADABLE', `types file ${path} cannot be read: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    // YAML is what many IoT platforms' configs are written in: say it is not read, and what to do.
    const yaml = /\.ya?ml$/i.test(path) ? '. Types files are JSON; YAML is not read: convert it (e.g. `yq -o=json . FILE`) or write JSON' : '';
    throw new TypesFileError('TYPES_INVALID', `types file ${path} is not valid JSON: ${(err as Error).message}${lineOf(text, (err as Error).message)}${yaml}`);
  }
  const parsed = parseDeviceTypes(doc);
  if (!parsed.ok) throw new TypesFileError('TYPES_INVALID', `types file ${path}: ${describeProblems(parsed.problems)}`);
  // Alarm rules are checked by the gateway's one rule validator, so a file with a bad rule is refused whole.
  const rules = typeRulesOf(parsed.types, `types file ${path}`);
  if (rules instanceof Error) throw new TypesFileError('TYPES_INVALID', rules.message);
  return parsed.types;
}

/** " (line L, column C)" for a JSON.parse message that gives a position, so an editor can go there. */
function lineOf(text: string, message: string): string {
  const at = /position (\d+)/.exec(message);
  if (!at) return '';
  const before = text.slice(0, Number(at[1]));
  const line = before.split('\n').length;
  return ` (line ${line}, column ${before.length - before.lastIndexOf('\n')})`;
}

export class TypesFile {
  readonly path: string;
  /** Reloads that put new types in force, and reloads refused (the previous types kept). */
  readonly counts = { reloads: 0, failures: 0 };
  /** Why the last reload failed, while the file stays broken. */
  lastError: string | undefined;
  private readonly listeners: TypesListener[] = [];
  private watcher: FSWatcher | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  /** The stat of the file as last read: the poll compares against it. */
  private seen = '';
  /** The text in force: a save that changes nothing is not a reload. */
  private text = '';
  private readonly debounceMs: number;
  private readonly pollMs: number;
  private readonly useWatch: boolean;

  constructor(
    path: string,
    private readonly log: Logger,
    opts: TypesFileOptions = {},
  ) {
    this.path = resolve(path);
    this.debounceMs = opts.debounceMs ?? 200;
    this.pollMs = opts.pollMs ?? 2000;
    this.useWatch = opts.watch ?? true;
  }

  /** Every change of the types in force (after a successful reload). */
  onChange(l: TypesListener): void {
    this.listeners.push(l);
  }

  /** Reads the file and puts its types in force; throws TypesFileError (a start must fail). */
  load(): void {
    this.seen = this.stat();
    const text = this.readText();
    useDeviceTypes(readTypesFile(this.path));
    this.text = text;
  }

  /** Watches for changes until close(). */
  start(): void {
    if (this.useWatch) this.watchFolder();
    this.pollTimer = setInterval(() => {
      if (this.stat() !== this.seen) this.schedule();
    }, this.pollMs);
    this.pollTimer.unref();
  }

  private watchFolder(): void {
    try {
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, name) => {
        if (name === null || name === basename(this.path)) this.schedule();
      });
      this.watcher.on('error', (err) => {
        this.log.warn({ file: this.path, err: err.message }, 'watching the types file failed; changes are still noticed by polling');
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (err) {
      this.log.warn({ file: this.path, err: (err as Error).message }, 'cannot watch the types file; changes are noticed by polling');
    }
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.debounce) clearTimeout(this.debounce);
    this.pollTimer = this.debounce = undefined;
  }

  private schedule(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.reload();
    }, this.debounceMs);
    this.debounce.unref();
  }

  /** Reads the file again: new types go in force, a bad file keeps the old ones and says why. */
  reload(): void {
    this.seen = this.stat();
    let text: string;
    let types: DeviceTypeSpec[];
    try {
      text = this.readText();
      if (text === this.text && this.lastError === undefined) return;
      types = readTypesFile(this.path);
    } catch (err) {
      const code = err instanceof GatewayError ? err.code : 'TYPES_INVALID';
      this.counts.failures++;
      this.lastError = (err as Error).message;
      this.log.error({ code, file: this.path }, `[${code}] ${this.lastError}. The previous device types stay in force (${deviceTypes().length} types): fix the file and save it again`);
      return;
    }
    const wasBroken = this.lastError !== undefined;
    this.lastError = undefined;
    this.text = text;
    if (JSON.stringify(types) === JSON.stringify(deviceTypes())) {
      if (wasBroken) this.log.info({ file: this.path }, `the types file ${this.path} is valid again, with the types already in force`);
      return;
    }
    useDeviceTypes(types);
    this.counts.reloads++;
    this.log.info({ file: this.path, types: types.map((t) => t.type) }, `device types reloaded from ${this.path}: ${types.length} types`);
    for (const l of this.listeners) l(types);
  }

  private readText(): string {
    try {
      return readFileSync(this.path, 'utf8');
    } catch (err) {
      throw new TypesFileError('TYPES_UNREADABLE', `types file ${this.path} cannot be read: ${(err as Error).message}`);
    }
  }

  private stat(): string {
    try {
      const s = statSync(this.path);
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      return 'missing';
    }
  }
}
