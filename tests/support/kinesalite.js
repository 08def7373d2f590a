// Start kinesalite (in-memory) on 127.0.0.1 only.
// The kinesalite CLI binds every interface, so the harness uses this launcher.
// Usage: NODE_PATH=<dir>/node_modules node kinesalite.js PORT
// Env (optional): BARGE_KINESALITE_STREAM_MS  time a stream stays CREATING/DELETING/UPDATING (default 0)
//                 BARGE_KINESALITE_SHARD_LIMIT total shards allowed across all streams (default 1000)
'use strict'
const kinesalite = require('kinesalite')

const port = parseInt(process.argv[2] || '0', 10)
const ms = parseInt(process.env.BARGE_KINESALITE_STREAM_MS || '0', 10)
const server = kinesalite({
  ssl: false,            // plain http, like --ssl absent on the CLI
  // no `path`: memdown, i.e. in memory; nothing is written to disk
  createStreamMs: ms,
  deleteStreamMs: ms,
  updateStreamMs: ms,
  shardLimit: parseInt(process.env.BARGE_KINESALITE_SHARD_LIMIT || '1000', 10),
})
server.on('error', (err) => {
  console.error('kinesalite: ' + (err.code || '') + ' ' + err.message)
  process.exit(1)
})
server.listen(port, '127.0.0.1', () => {
  const a = server.address()
  console.log('kinesalite listening at http://%s:%s', a.address, a.port)
})
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0))
