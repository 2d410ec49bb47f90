#!/usr/bin/env node
'use strict';
// Consumes with the stock ali-ons push consumer (clustering mode: rebalance, broker-side offsets,
// send-back to %RETRY%<group>); prints one JSON line per delivery on stdout. Exits 0 once --count
// distinct messages were consumed successfully (after closing the consumer, which commits the
// offsets with UPDATE_CONSUMER_OFFSET and sends UNREGISTER_CLIENT), 2 on timeout.
const { Consumer } = require('ali-ons');
const { parseArgs, makeLogger, clientOptions, emit, withTimeout, closeAll } = require('./common');

const USAGE = `usage: node consume.js --group G --topic T --count N [options]
  --namesrv ADDR       NameServer host:port[;host:port] (default 127.0.0.1:9876)
  --group G            consumer group
  --topic T            topic
  --tags EXPR          subscription expression, e.g. 'TagA||TagB' (default '*')
  --sql EXPR           subscribe with this SQL92 expression instead ({expressionType: 'SQL92'});
                       the broker filters (it needs enablePropertyFilter=true)
  --count N            exit 0 after N distinct messages were consumed successfully (default 1)
  --timeout-ms MS      exit 2 if they have not arrived by then (default 30000)
  --fail-first         throw on the first delivery of each message, so it is sent back
                       (CONSUMER_SEND_MSG_BACK) and must come again via %RETRY%<group>
  --from first|last    where a group with no committed offset starts (CONSUME_FROM_FIRST_OFFSET
                       or CONSUME_FROM_LAST_OFFSET, ali-ons's default) (default first)
  --route-poll-ms MS   route refresh interval; %RETRY% routes are only found by it (default 5000)
  --rebalance-ms MS    rebalance interval (default 10000, as ali-ons)
  --verbose            ali-ons info logs on stderr
A message's identity is its KEYS + body (stable across retries, unlike msgId).
Output, one line per delivery: {"action":"ok"|"fail"|"dup","topic","bodyLen","body" (cut at 200),"tags","keys","msgId",
  "queueId","queueOffset","reconsumeTimes","retryTopic","originMsgId","storeTopic"}
`;

const args = parseArgs(process.argv.slice(2), {
  namesrv: '127.0.0.1:9876', group: '', topic: '', tags: '*', sql: '', count: 1, 'timeout-ms': 30000,
  'fail-first': false, from: 'first', 'route-poll-ms': 5000, 'rebalance-ms': 10000, verbose: false,
}, USAGE);
if (!args.group || !args.topic || ![ 'first', 'last' ].includes(args.from)) {
  process.stderr.write(USAGE);
  process.exit(64);
}

async function main() {
  const logger = makeLogger(args.verbose, 'consume');
  const consumer = new Consumer(Object.assign(clientOptions(args, logger), {
    consumerGroup: args.group,
    consumeFromWhere: args.from === 'first' ? 'CONSUME_FROM_FIRST_OFFSET' : 'CONSUME_FROM_LAST_OFFSET',
    pollNameServerInteval: args['route-poll-ms'],
    rebalanceInterval: args['rebalance-ms'],
  }));
  const failed = new Set();   // identities whose first delivery was failed on purpose
  const done = new Set();     // identities consumed successfully
  let finish;
  const finished = new Promise(resolve => { finish = resolve; });

  consumer.on('error', err => {
    // a thrown handler error is reported here too; that one is expected with --fail-first
    if (/fail-first/.test(err.message)) return;
    logger.warn(err.message);
  });
  const expr = args.sql ? { expressionType: 'SQL92', subString: args.sql } : args.tags;
  consumer.subscribe(args.topic, expr, async msg => {
    const body = msg.body ? msg.body.toString() : '';
    const id = `${msg.keys || ''}\u0000${body}`;
    const line = {
      action: 'ok', topic: msg.topic, bodyLen: body.length,
      body: body.length > 200 ? `${body.slice(0, 200)}...` : body, tags: msg.tags, keys: msg.keys || null,
      msgId: msg.msgId, queueId: msg.queueId, queueOffset: msg.queueOffset,
      reconsumeTimes: msg.reconsumeTimes, retryTopic: msg.retryTopic || null,
      originMsgId: msg.originMessageId || null, storeTopic: msg.properties.REAL_TOPIC || null,
    };
    if (args['fail-first'] && !failed.has(id) && !done.has(id)) {
      failed.add(id);
      emit(Object.assign(line, { action: 'fail' }));
      throw new Error('fail-first: failing the first delivery on purpose');
    }
    if (done.has(id)) {
      emit(Object.assign(line, { action: 'dup' }));
      return;
    }
    done.add(id);
    emit(line);
    // let ali-ons advance the queue's offset past this message before we close
    if (done.size >= args.count) setTimeout(finish, 500);
  });

  let rc = 0;
  try {
    await withTimeout(finished, args['timeout-ms'], `waiting for ${args.count} messages`);
  } catch (err) {
    process.stderr.write(`[consume] error: ${err.message} (got ${done.size})\n`);
    rc = 2;
  }
  try {
    await withTimeout(closeAll(consumer), 5000, 'consumer close');
  } catch (err) {
    logger.error(err);
    rc = rc || 1;
  }
  return rc;
}

const hardDeadline = setTimeout(() => {
  process.stderr.write('[consume] error: hard deadline reached\n');
  process.exit(2);
}, args['timeout-ms'] + 10000);
main().then(rc => {
  clearTimeout(hardDeadline);
  process.exit(rc);
}, err => {
  process.stderr.write(`[consume] error: ${err.stack}\n`);
  process.exit(1);
});
