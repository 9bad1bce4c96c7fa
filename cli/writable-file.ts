/** The check every output-file flag (--json, --trace-vm, --trace-packets) makes up front. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliError, EXIT } from './exit-codes';

/** Refuses an output file that cannot be created before anything starts. */
export function checkWritable(file: string, flag: string): void {
  try {
    if (fs.existsSync(file)) {
      if (fs.statSync(file).isDirectory()) throw new Error('is a directory');
      fs.accessSync(file, fs.constants.W_OK);
    } else {
      const dir = path.dirname(path.resolve(file));
      if (!fs.existsSync(dir)) throw new Error(`directory ${dir} does not exist`);
      fs.accessSync(dir, fs.constants.W_OK);
    }
  } catch (e) {
    throw new CliError(`${flag} ${file}: cannot write there (${(e as Error).message})`, EXIT.USAGE);
  }
}
