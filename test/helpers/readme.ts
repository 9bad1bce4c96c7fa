/** README.md's examples: the code block after each `<!-- example: NAME -->` marker. */
import * as fs from 'fs';
import * as path from 'path';

const README = path.resolve(__dirname, '..', '..', '..', 'README.md');

export function readmeExample(name: string, text = fs.readFileSync(README, 'utf8')): string[] {
  const at = text.indexOf(`<!-- example: ${name} -->`);
  if (at < 0) throw new Error(`README has no example '${name}'`);
  const m = /```[a-z]*\n([\s\S]*?)```/.exec(text.slice(at));
  if (!m) throw new Error(`README example '${name}' has no code block`);
  return m[1].replace(/\n$/, '').split('\n');
}
