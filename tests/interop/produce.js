#!/usr/bin/env node
'use strict';
// Sends messages with the stock ali-ons producer through a RocketMQ NameServer; prints one JSON
// line per send result on stdout. Exit 0 when every send returned, 1 on a send error, 2 on timeout.
const { Producer, Message } = require('ali-ons');
const { parseArgs, makeLogger, clientOptions, emit, withTimeout, closeAll } = require('./common');

const USAGE = `usage: node produce.js --topic T [options]
  --namesrv ADDR       NameServer host:port[;host:port] (default 127.0.0.1:9876)
  --topic T            topic (must already exist in the NameServer's routes)
  --count N            messages to send (default 1)
  --tags A[,B...]      tag of message i is the (i mod n)-th of this list (default: no tag)
  --keys K             message i gets KEYS "K-i" (default: no keys)
  --index-prop NAME    message i gets the user property NAME = "i" (for SQL92 subscriptions)
  --body TEXT          body of message i is "TEXT-i" (default "msg")
  --body-bytes N       pad each body with '.' to N bytes (>= 4096 makes ali-ons zlib-compress it)
  --delay-level N      delayTimeLevel of every message (default 0: delivered at once)
  --group G            producer group (default mqfs_interop_producer)
  --timeout-ms MS      bound on the whole run (default 30000)
  --verbose            ali-ons info logs on stderr
Output, one line per message: {"i","status","msgId","topic","brokerName","queueId","queueOffset",
  "tags","keys","body"}
`;

const args = parseArgs(process.argv.slice(2), {
  namesrv: '127.0.0.1:9876', topic: '', count: 1, tags: '', keys: '', 'index-prop': '', body: 'msg',
  'body-bytes': 0, 'delay-level': 0, group: 'mqfs_interop_producer', 'timeout-ms': 30000, verbose: false,
}, USAGE);
if (!args.topic) {
  process.stderr.write(USAGE);
  process.exit(64);
}

async function main() {
  const logger = makeLogger(args.verbose, 'produce');
  const producer = new Producer(Object.assign(clientOptions(args, logger), {
    producerGroup: args.group,
  }));
  producer.on('error', err => logger.error(err));
  const tags = args.tags ? args.tags.split(',') : [];
  let rc = 0;
  try {
    await producer.ready();
    for (let i = 0; i < args.count; i++) {
      const tag = tags.length ? tags[i % tags.length] : null;
      let body = `${args.body}-${i}`;
      if (body.length < args['body-bytes']) body = body.padEnd(args['body-bytes'], '.');
      const msg = new Message(args.topic, tag, body);
      // ali-ons quirk: a Message built without a tag still has TAGS=null in its properties and
      // sends the literal text "null" as the tag; send no TAGS property instead, as Java does.
      if (tag === null) delete msg.properties.TAGS;
      if (args.keys) msg.keys = [ `${args.keys}-${i}` ];
      if (args['index-prop']) msg.properties[args['index-prop']] = String(i);
      if (Number(args['delay-level']) > 0) msg.delayTimeLevel = Number(args['delay-level']);
      const r = await producer.send(msg);
      emit({
        i, status: r.sendStatus, msgId: r.msgId, topic: r.messageQueue.topic,
        brokerName: r.messageQueue.brokerName, queueId: Number(r.messageQueue.queueId),
        queueOffset: r.queueOffset, tags: tag, keys: args.keys ? `${args.keys}-${i}` : null,
        body: body.length > 200 ? `${body.slice(0, 200)}...(${body.length} bytes)` : body,
      });
    }
  } catch (err) {
    logger.error(err);
    rc = 1;
  }
  try {
    await withTimeout(closeAll(producer), 5000, 'producer close');
  } catch (err) {
    logger.error(err);
    rc = rc || 1;
  }
  return rc;
}

const deadline = setTimeout(() => {
  process.stderr.write(`[produce] error: timed out after ${args['timeout-ms']} ms\n`);
  process.exit(2);
}, args['timeout-ms']);
main().then(rc => {
  clearTimeout(deadline);
  process.exit(rc);
}, err => {
  process.stderr.write(`[produce] error: ${err.stack}\n`);
  process.exit(1);
});
