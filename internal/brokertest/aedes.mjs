// Runs an aedes MQTT broker for brokertest (aedes.go), in memory, on
// 127.0.0.1. Its settings come from the environment: AEDES_MODULE (the path
// of aedes.js), AEDES_PORT, and for TLS AEDES_TLS_PORT, AEDES_CERT and
// AEDES_KEY. SIGTERM closes the listeners and the broker.
import fs from 'node:fs'
import net from 'node:net'
import tls from 'node:tls'
import { pathToFileURL } from 'node:url'

const { Aedes } = await import(pathToFileURL(process.env.AEDES_MODULE).href)
// aedes refuses client ids longer than 23 characters by default, the
// minimum MQTT 3.1.1 requires brokers to accept; readers' ids are longer.
const broker = await Aedes.createBroker({ maxClientsIdLength: 256 })
broker.on('clientError', (client, err) => console.error(`client ${client.id}: ${err.message}`))

const servers = [net.createServer(broker.handle).listen(Number(process.env.AEDES_PORT), '127.0.0.1')]
if (process.env.AEDES_TLS_PORT) {
  const options = { cert: fs.readFileSync(process.env.AEDES_CERT), key: fs.readFileSync(process.env.AEDES_KEY) }
  servers.push(tls.createServer(options, broker.handle).listen(Number(process.env.AEDES_TLS_PORT), '127.0.0.1'))
}
for (const server of servers) {
  server.on('error', (err) => { console.error(`listen: ${err.message}`); process.exit(1) })
}
console.log(`aedes ${broker.version} on node ${process.version}`)

process.on('SIGTERM', () => {
  for (const server of servers) server.close()
  broker.close(() => process.exit(0))
})
