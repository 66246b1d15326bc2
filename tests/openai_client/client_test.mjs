// The official `openai` client against a running `camelid serve` (base URL in argv[2]).
import OpenAI from 'openai';
import assert from 'node:assert/strict';
import fs from 'node:fs';

const client = new OpenAI({ baseURL: process.argv[2], apiKey: 'test-key', maxRetries: 0 });
let passed = 0, failed = 0;
async function check(name, fn) {
  try { await fn(); passed++; console.log(`ok   ${name}`); }
  catch (e) { failed++; console.log(`FAIL ${name}: ${e.stack || e}`); }
}

const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Name a color.' }];

await check('models.list', async () => {
  const models = await client.models.list();
  assert.equal(models.data[0].id, 'tiny-llama3');
});
await check('chat.completions.create', async () => {
  const r = await client.chat.completions.create({ model: 'tiny-llama3', messages, max_tokens: 8, seed: 1 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});
await check('chat stream equals non-stream for a seed', async () => {
  const whole = await client.chat.completions.create({ model: 'tiny-llama3', messages, max_tokens: 10, seed: 9 });
  const stream = await client.chat.completions.create({
    model: 'tiny-llama3', messages, max_tokens: 10, seed: 9, stream: true, stream_options: { include_usage: true } });
  let text = '', finish = null, usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    if (chunk.choices.length === 0) continue;
    text += chunk.choices[0].delta.content ?? '';
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
});
await check('completions.create', async () => {
  const r = await client.completions.create({ model: 'tiny-llama3', prompt: 'Once upon a time', max_tokens: 5, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
});
await check('any model name is served by this model', async () => {
  const r = await client.chat.completions.create({ model: 'gpt-9', messages, max_tokens: 2 });
  assert.equal(r.model, 'tiny-llama3');
});
await check('n, logprobs and penalties', async () => {
  const r = await client.chat.completions.create({
    model: 'tiny-llama3', messages, max_tokens: 4, seed: 2, n: 2, logprobs: true, top_logprobs: 2,
    presence_penalty: 0.5, frequency_penalty: 0.5, logit_bias: { '128009': -100 } });
  assert.equal(r.choices.length, 2);
  for (const c of r.choices) {
    assert.equal(c.logprobs.content.length, 4);
    assert.equal(c.logprobs.content[0].top_logprobs.length, 2);
  }
});
await check('tools are accepted, tool results fed back', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
  const r = await client.chat.completions.create({
    model: 'tiny-llama3', max_tokens: 3, tools, tool_choice: 'auto',
    messages: [{ role: 'user', content: 'Weather in Oslo?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'cold' }] });
  assert.ok(['stop', 'length', 'tool_calls'].includes(r.choices[0].finish_reason));
});
await check('bad request -> BadRequestError', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'tiny-llama3', messages: [], max_tokens: 3 }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400);
});
// Replies recorded by test_server_choice_stream (argv[3]), served through the client's fetch hook.
const rec = process.argv[3];
if (rec && fs.existsSync(`${rec}/tool_whole.json`)) {
  const recorded = (file, type) => new OpenAI({
    baseURL: 'http://recorded.invalid/v1', apiKey: 'k', maxRetries: 0,
    fetch: async () => new Response(fs.readFileSync(`${rec}/${file}`), { status: 200, headers: { 'content-type': type } }) });
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
  const checkCalls = (msg) => {
    assert.equal(msg.content, 'Let me check.');
    assert.equal(msg.tool_calls.length, 2);
    for (const c of msg.tool_calls) {
      assert.equal(c.type, 'function');
      assert.equal(c.function.name, 'get_weather');
      assert.match(c.id, /^call_[A-Za-z0-9]{24}$/);
    }
    assert.deepEqual(JSON.parse(msg.tool_calls[0].function.arguments), { city: 'Oslo' });
    assert.deepEqual(JSON.parse(msg.tool_calls[1].function.arguments), { city: 'Bergen', days: 2 });
  };
  await check('recorded tool-call reply (whole)', async () => {
    const r = await recorded('tool_whole.json', 'application/json').chat.completions.create({ model: 'm', messages, tools });
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    checkCalls(r.choices[0].message);
  });
  await check('recorded tool-call stream through the stream helper', async () => {
    const stream = recorded('tool_stream.sse', 'text/event-stream').beta.chat.completions.stream({ model: 'm', messages, tools });
    const final = await stream.finalChatCompletion();
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
    checkCalls(final.choices[0].message);
  });
} else {
  console.log('skip recorded tool-call replies (no recording)');
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
