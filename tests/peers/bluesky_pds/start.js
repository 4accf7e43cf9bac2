// A real Bluesky PDS and the PLC directory it registers DIDs with, both bound to 127.0.0.1.
//
// Usage: node start.js <plc-port> <pds-port> <data-dir>
//
// The PDS and PLC servers call `app.listen(port)`, which listens on every interface; this script
// makes their express apps listen on loopback only, so the peer is never reachable from outside
// this machine. The PDS runs in dev mode (http and the `.test` handle domain on localhost),
// without invites, without an AppView, crawlers or email, with its databases and blobs under
// <data-dir>. The PLC directory keeps its operations in memory. Secrets are random per run.
//
// Prints one JSON line {"plc": url, "pds": url} on stdout once both listen; stops on SIGTERM/SIGINT.
'use strict'

const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const { PDS, envToCfg, envToSecrets, readEnv } = require('@atproto/pds')
const { PlcServer, Database: PlcDatabase } = require('@did-plc/server')
const { Secp256k1Keypair } = require('@atproto/crypto')

const LOOPBACK = '127.0.0.1'

// Both servers' start() call app.listen(port); bind that call to loopback instead of every interface.
function listenOnLoopback(app) {
  const listen = app.listen.bind(app)
  app.listen = (port, ...rest) => listen(port, LOOPBACK, ...rest)
}

async function main() {
  const [plcPort, pdsPort, dataDir] = process.argv.slice(2)
  if (!plcPort || !pdsPort || !dataDir) {
    throw new Error('usage: node start.js <plc-port> <pds-port> <data-dir>')
  }
  fs.mkdirSync(dataDir, { recursive: true })

  const plc = PlcServer.create({ db: PlcDatabase.mock(), port: Number(plcPort) })
  listenOnLoopback(plc.app)
  await plc.start()
  const plcUrl = `http://${LOOPBACK}:${plcPort}`

  const rotationKey = await Secp256k1Keypair.create({ exportable: true })
  Object.assign(process.env, {
    PDS_HOSTNAME: 'localhost',
    PDS_PORT: String(pdsPort),
    PDS_DEV_MODE: 'true',
    PDS_INVITE_REQUIRED: 'false',
    PDS_DATA_DIRECTORY: dataDir,
    PDS_BLOBSTORE_DISK_LOCATION: path.join(dataDir, 'blobs'),
    PDS_DID_PLC_URL: plcUrl,
    PDS_JWT_SECRET: crypto.randomBytes(32).toString('hex'),
    PDS_ADMIN_PASSWORD: crypto.randomBytes(16).toString('hex'),
    PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX: Buffer.from(await rotationKey.export()).toString('hex'),
    PDS_CRAWLERS: '',
  })
  const env = readEnv()
  const pds = await PDS.create(envToCfg(env), envToSecrets(env))
  listenOnLoopback(pds.app)
  await pds.start()

  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    await pds.destroy()
    await plc.destroy()
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.stdout.write(JSON.stringify({ plc: plcUrl, pds: `http://${LOOPBACK}:${pdsPort}` }) + '\n')
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
