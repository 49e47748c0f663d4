// node:http for the sidecar. An ESM `import` of node:http builds its module namespace, which reads
// every lazily defined export (WebSocket, the fetch classes) and so loads and compiles Node's
// bundled undici, which the sidecar never uses: 13 MiB resident in a bare Node process, 2–3 MiB
// in the idle sidecar (docs/benchmarks.md). process.getBuiltinModule hands over the CommonJS
// exports without touching those getters. ESLint refuses value imports of node:http in sidecar/.
export const http = process.getBuiltinModule("node:http");
