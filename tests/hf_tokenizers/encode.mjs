// Encodes and decodes a JSON array of strings with Hugging Face's tokenizers.js, loading
// tokenizer.json + tokenizer_config.json from a directory as the Hub's files are loaded:
//   node encode.mjs DIR TEXTS.json  ->  {"ids": [[...], ...], "decoded": ["...", ...]}
import { Tokenizer } from "@huggingface/tokenizers";
import fs from "fs";

const [dir, textsFile] = process.argv.slice(2);
const read = (f) => JSON.parse(fs.readFileSync(f, "utf8"));
const tokenizer = new Tokenizer(read(`${dir}/tokenizer.json`), read(`${dir}/tokenizer_config.json`));
const ids = read(textsFile).map((t) => tokenizer.encode(t).ids);
const decoded = ids.map((x) => tokenizer.decode(x, { skip_special_tokens: true }));
process.stdout.write(JSON.stringify({ ids, decoded }));
