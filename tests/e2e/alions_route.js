// alions_route.js — asks a NameServer for a topic route, a missing topic and a KV value with
// the stock ali-ons client's MQClientAPI (npm package `ali-ons`, found through NODE_PATH) and
// prints one JSON line with what it got. Used by test_namesrv.py when ali-ons is installed.
// Usage: node alions_route.js PORT TOPIC
const MQClientAPI = require('ali-ons/lib/mq_client_api');

(async () => {
  const api = new MQClientAPI({ nameSrv: '127.0.0.1:' + process.argv[2], httpclient: {}, responseTimeout: 3000 });
  await api.ready();
  const out = { route: await api.getDefaultTopicRouteInfoFromNameServer(process.argv[3], 3000) };
  try {
    await api.getTopicRouteInfoFromNameServer('NoSuchTopic', 3000);
  } catch (e) {
    out.missing = e.message;
  }
  try {
    await api.getKVConfigByValue('PROJECT_CONFIG', '127.0.0.1', 3000);
  } catch (e) {
    out.kv = e.message;
  }
  await api.close();
  console.log(JSON.stringify(out));
})().catch(e => { console.error('FAIL', e); process.exit(1); });
