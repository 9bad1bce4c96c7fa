#!/usr/bin/env node
'use strict';
// Launcher: the code is TypeScript compiled by `npm run build` into dist/.
require('../dist/cli/main.js').vmmGdbstubProcess();
