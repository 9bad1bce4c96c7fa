#!/usr/bin/env node
/*
 * `npm ci` / `npm install` runs this (package.json "install"): builds the kvm backend's
 * N-API addon with node-gyp. A failed build never fails the install: everything but the
 * kvm backend works without it, and `--backend kvm`, `hostcheck` and the kvm tests say
 * that the addon is missing (with the reason written to native/build-error.txt).
 */
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const here = __dirname;
const errorFile = path.join(here, 'build-error.txt');

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  try { candidates.push(require.resolve('node-gyp/bin/node-gyp.js')); } catch { /* not installed locally */ }
  return candidates.find((p) => p && fs.existsSync(p));
}

function fail(why) {
  fs.writeFileSync(errorFile, why + '\n');
  console.log(`kvm addon: not built (${why.split('\n')[0]}); the kvm backend is unavailable, everything else works`);
  process.exit(0);
}

const gyp = nodeGyp();
if (!gyp) fail('node-gyp not found (it comes with npm)');
const args = [gyp, 'rebuild'];
// Headers installed with node (Debian/NodeSource packages, official tarballs): no download.
const prefix = path.join(path.dirname(process.execPath), '..');
if (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
const r = spawnSync(process.execPath, args, { cwd: here, encoding: 'utf8' });
if (r.status !== 0) fail(`node-gyp failed (status ${r.status}): ${(r.stderr || '').trim().split('\n').slice(-5).join('\n')}`);
try { fs.unlinkSync(errorFile); } catch { /* none */ }
console.log('kvm addon: built (native/build/Release/kvm_addon.node)');
