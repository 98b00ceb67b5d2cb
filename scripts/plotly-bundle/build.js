// plotly.js with only the trace types this product draws: the full bundle (4.8 MB) was parsed
// and run on every page load; this one is a third of it. Options as plotly.js's own build
// (its esbuild-config.js). Run by scripts/build-plotly.sh; the traces come from traces.json,
// which tests/unit/test_plotly_bundle.py checks against the figures the Python code builds.
'use strict';
const esbuild = require('esbuild');
const { environmentPlugin } = require('esbuild-plugin-environment');
const { glsl } = require('esbuild-plugin-glsl');
const InlineCSSPlugin = require('esbuild-plugin-inline-css');
const fs = require('fs');
const path = require('path');

const traces = JSON.parse(fs.readFileSync(path.join(__dirname, 'traces.json'), 'utf8'));
const out = process.argv[2];
const version = require('plotly.js/package.json').version;
const registered = traces.filter((t) => t !== 'scatter');   // scatter is in plotly.js's core
const entry = path.join(__dirname, 'entry.js');
fs.writeFileSync(entry, "var Plotly = require('plotly.js/lib/core');\n" +
    `Plotly.register([${registered.map((t) => `require('plotly.js/lib/${t}')`).join(', ')}]);\n` +
    'module.exports = Plotly;\n');
esbuild.build({
    entryPoints: [entry], outfile: out, format: 'iife', globalName: 'Plotly',
    bundle: true, minify: true, sourcemap: false, legalComments: 'none',
    banner: { js: `/* plotly.js v${version} (MIT, Copyright Plotly, Inc.), partial bundle; traces: ${traces.join(',')} */` },
    plugins: [InlineCSSPlugin(), glsl({ minify: true }), environmentPlugin({ NODE_DEBUG: false })],
    alias: { regl: '@plotly/regl', stream: 'stream-browserify' },
    define: { global: 'window', 'define.amd': 'false' }, target: 'es2016', logLevel: 'warning',
}).then(() => {
    fs.unlinkSync(entry);
    console.log(`${out}: plotly.js ${version}, traces ${traces.join(', ')}, ${fs.statSync(out).size} bytes`);
});
