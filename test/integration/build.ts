// Integration tests run the built CLI as a child process: build once before them.
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit', cwd: new URL('../../', import.meta.url).pathname });
}
