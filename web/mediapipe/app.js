// MediaPipe Tasks' TextClassifier on an `edge-albert export-mediapipe` model, all files from this server:
// the bundle and wasm come from node_modules (npm ci), the model from ?model=URL or the file picker.
// window.mediapipePage is the test hook: ready (a promise of the model's name) and classifyAll(texts).
import { FilesetResolver, TextClassifier } from "./node_modules/@mediapipe/tasks-text/text_bundle.mjs";

const WASM = new URL("./node_modules/@mediapipe/tasks-text/wasm", import.meta.url).href.replace(/\/$/, "");
const $ = (id) => document.getElementById(id);
let classifier = null;
let filesetPromise = null;

function status(message, isError = false) {
  $("status").textContent = message;
  $("status").className = isError ? "error" : "";
}

// modelAssetPath for a URL of this origin, modelAssetBuffer for a picked file; any earlier model is closed.
async function load(name, baseOptions) {
  status(`Loading ${name} ...`);
  $("run").disabled = true;
  filesetPromise ??= FilesetResolver.forTextTasks(WASM);
  const fileset = await filesetPromise;
  const next = await TextClassifier.createFromOptions(fileset, { baseOptions: { ...baseOptions, delegate: "CPU" } });
  // The first classify() sets up the interpreter's kernels (seconds); do it here, not on the first click.
  const started = performance.now();
  next.classify("warm up");
  const warmMs = performance.now() - started;
  classifier?.close();
  classifier = next;
  $("model-name").textContent = name;
  $("run").disabled = false;
  status(`${name} loaded (first call ${warmMs.toFixed(0)} ms).`);
  return name;
}

// Scores in the model's label order (index), as MediaPipe's Python API gives them to edge-albert, and the time.
function classify(text) {
  if (!classifier) throw new Error("no model loaded");
  const started = performance.now();
  const result = classifier.classify(text);
  const ms = performance.now() - started;
  const categories = result.classifications[0].categories;
  const scores = new Array(categories.length).fill(0);
  const names = new Array(categories.length).fill("");
  for (const c of categories) {
    scores[c.index] = c.score;
    names[c.index] = c.categoryName || c.displayName || String(c.index);
  }
  return { scores, names, ms };
}

function show(text) {
  const { scores, names, ms } = classify(text);
  const order = scores.map((_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const result = $("result");
  result.replaceChildren();
  const label = document.createElement("div");
  label.className = "label";
  label.textContent = names[order[0]];
  result.append(label);
  for (const i of order) {
    const row = document.createElement("div");
    row.className = "bar-row";
    const name = document.createElement("span");
    name.textContent = names[i];
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("div");
    fill.style.width = `${(100 * scores[i]).toFixed(1)}%`;
    bar.append(fill);
    const score = document.createElement("div");
    score.className = "score";
    score.textContent = scores[i].toFixed(4);
    row.append(name, bar, score);
    result.append(row);
  }
  const latency = document.createElement("div");
  latency.className = "latency";
  latency.textContent = `${ms.toFixed(1)} ms (in this browser)`;
  result.append(latency);
}

$("run").addEventListener("click", () => {
  try {
    show($("text").value);
  } catch (error) {
    status(String(error.message || error), true);
  }
});

$("model-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  try {
    await load(file.name, { modelAssetBuffer: new Uint8Array(await file.arrayBuffer()) });
  } catch (error) {
    status(`Cannot load ${file.name}: ${error.message || error}`, true);
  }
});

const modelUrl = new URLSearchParams(location.search).get("model");
const ready = modelUrl
  ? load(modelUrl, { modelAssetPath: new URL(modelUrl, location.href).href }).catch((error) => {
      status(`Cannot load ${modelUrl}: ${error.message || error}`, true);
      throw error;
    })
  : new Promise(() => {});

window.mediapipePage = {
  ready,
  // Each text's scores (label order) and its time in ms, one classify() call per text.
  classifyAll: (texts) => texts.map((text) => classify(text)),
};
