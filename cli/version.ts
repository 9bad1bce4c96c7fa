import * as fs from 'node:fs';
import * as path from 'node:path';

/** `TOOL VERSION` from package.json (dist/cli/ -> the repository root). */
export function versionLine(tool: string): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: string };
  return `${tool} ${pkg.version ?? 'unknown'}\n`;
}
