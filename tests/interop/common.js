'use strict';
// Shared helpers for produce.js and consume.js: argument parsing, the options that make ali-ons
// talk to a NameServer directly (no Alibaba Cloud address server, no request signing), a
// logger that keeps stdout for result lines only, and closing a client for good.
const util = require('util');
const MQProducer = require('ali-ons/lib/producer/mq_producer');

// Parses --name value / --flag arguments into an object; `spec` maps name -> default value
// (booleans are flags). Unknown arguments are an error.
function parseArgs(argv, spec, usage) {
  const out = Object.assign({}, spec);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') {
      process.stdout.write(usage);
      process.exit(0);
    }
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(a);
    if (!m || !(m[1] in spec)) fail(`unknown argument: ${a}\n${usage}`);
    const name = m[1];
    if (typeof spec[name] === 'boolean') {
      out[name] = m[2] === undefined ? true : m[2] !== 'false';
    } else {
      const v = m[2] !== undefined ? m[2] : argv[++i];
      if (v === undefined) fail(`missing value for --${name}`);
      out[name] = typeof spec[name] === 'number' ? Number(v) : v;
      if (typeof spec[name] === 'number' && !Number.isFinite(out[name])) fail(`--${name} wants a number`);
    }
  }
  return out;
}

function fail(msg) {
  process.stderr.write(msg.endsWith('\n') ? msg : msg + '\n');
  process.exit(64);
}

// ali-ons logs through options.logger (info/warn/error/debug). Everything goes to stderr so
// stdout carries only the JSON result lines; info/debug only with --verbose.
function makeLogger(verbose, tag) {
  const w = level => (...args) => {
    if (!verbose && (level === 'info' || level === 'debug')) return;
    // logged on every first route fetch of a topic; harmless (the entry it replaces is empty)
    if (!verbose && /updateTopicPublishInfo\(\) prev is not null/.test(String(args[0]))) return;
    const text = args.map(a => (a instanceof Error ? a.stack : a));
    process.stderr.write(`[${tag}] ${level}: ${util.format(...text)}\n`);
  };
  return { info: w('info'), warn: w('warn'), error: w('error'), debug: w('debug') };
}

// Options every ali-ons client here gets. With nameSrv set, RemotingClient never uses the
// httpclient (it is only for fetching a NameServer list from an HTTP address server), but its
// constructor asserts one is passed; this one refuses to make any request. No accessKeyId /
// accessKeySecret: without them Channel.beforeRequest adds no Signature/AccessKey/OnsChannel
// extFields. namespace stays '' so topics and groups are not prefixed.
function clientOptions(args, logger) {
  const nameSrv = String(args.namesrv).split(';').filter(Boolean);
  return {
    nameSrv: nameSrv.length === 1 ? nameSrv[0] : nameSrv,
    namespace: '',
    httpclient: {
      async request(url) {
        throw new Error(`refusing HTTP request to ${url}: nameSrv is set`);
      },
    },
    logger,
  };
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// Runs `fn` with a bound: resolves to its value or rejects after `ms`.
function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// Closes an ali-ons client, then the hidden CLIENT_INNER_PRODUCER (MQProducer.getDefaultProducer,
// which a consumer uses when a send-back fails) that ali-ons also starts: its timers would keep
// the event loop alive.
async function closeAll(client) {
  await client.close();
  if (MQProducer.defaultProducer) await MQProducer.defaultProducer.close();
}

module.exports = { parseArgs, fail, makeLogger, clientOptions, emit, withTimeout, closeAll };
