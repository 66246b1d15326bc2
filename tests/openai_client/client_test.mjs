// The official `openai` client against a running `camelid serve` (base URL in argv[2]).
import OpenAI from 'openai';
import assert from 'node:assert/strict';

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
await check('unknown model -> NotFoundError', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'gpt-9', messages }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
});
await check('bad request -> BadRequestError', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'tiny-llama3', messages: [], max_tokens: 3 }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400);
});
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
