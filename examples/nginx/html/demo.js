// Fetches /ice-servers and runs ICE gathering through each server, one
// RTCPeerConnection per server, counting candidates by type and collecting
// icecandidateerror events.  window.iceResults and body[data-done] are for tests.
"use strict";

const GATHER_TIMEOUT_MS = 10000;

function isTurn(server) {
  return server.urls.some((u) => /^turns?:/.test(u));
}

function gather(server) {
  return new Promise((resolve) => {
    const result = { urls: server.urls, turn: isTurn(server), host: 0, srflx: 0, relay: 0,
                     candidates: [], errors: [] };
    const pc = new RTCPeerConnection({ iceServers: [server] });
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      pc.close();
      resolve(result);
    };
    pc.onicecandidate = (e) => {
      if (!e.candidate) return finish();
      const type = e.candidate.type || (e.candidate.candidate.match(/ typ (\w+)/) || [])[1];
      if (type in result) result[type] += 1;
      result.candidates.push({ type, protocol: e.candidate.protocol,
                               address: e.candidate.address, port: e.candidate.port,
                               relayProtocol: e.candidate.relayProtocol });
    };
    pc.onicecandidateerror = (e) => {
      result.errors.push({ url: e.url, code: e.errorCode, text: e.errorText });
    };
    pc.onicegatheringstatechange = () => {
      if (pc.iceGatheringState === "complete") finish();
    };
    pc.createDataChannel("probe");
    pc.createOffer()
      .then((offer) => pc.setLocalDescription(offer))
      .catch((err) => { result.errors.push({ text: String(err) }); finish(); });
    setTimeout(finish, GATHER_TIMEOUT_MS);
  });
}

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  td.style.whiteSpace = "pre-line"; // one URL or error a line
  if (cls) td.className = cls;
  return td;
}

function show(results) {
  const body = document.querySelector("#results tbody");
  for (const r of results) {
    const row = body.insertRow();
    cell(row, r.urls.join("\n"));
    cell(row, String(r.host), "count");
    cell(row, String(r.srflx), "count" + (!r.turn ? (r.srflx > 0 ? " ok" : " bad") : ""));
    cell(row, String(r.relay), "count" + (r.turn ? (r.relay > 0 ? " ok" : " bad") : ""));
    cell(row, r.errors.map((e) => `${e.code || ""} ${e.text || ""} ${e.url || ""}`.trim())
      .join("\n") || "none", r.errors.length ? "bad" : "");
  }
  document.getElementById("results").hidden = false;
}

async function main() {
  const status = document.getElementById("status");
  let answer;
  try {
    const res = await fetch("/ice-servers", { cache: "no-store" });
    answer = await res.json();
    if (!res.ok) throw new Error(`HTTP ${res.status}: ${answer.error || ""}`);
  } catch (err) {
    status.textContent = `Could not fetch /ice-servers: ${err.message}`;
    status.className = "bad";
    window.iceResults = { error: err.message, servers: [] };
    document.body.dataset.done = "1";
    return;
  }
  document.getElementById("answer").textContent = JSON.stringify(answer, null, 2);
  const servers = answer.iceServers || [];
  status.textContent = `Gathering candidates through ${servers.length} server(s)` +
    (answer.degraded ? " (degraded: the TURN provider failed, STUN only)" : "") + "…";
  const results = await Promise.all(servers.map(gather));
  show(results);
  const relays = results.reduce((n, r) => n + r.relay, 0);
  status.textContent = `${servers.length} server(s) checked; ${relays} relay candidate(s)` +
    (answer.ttl ? `; credentials valid for ${answer.ttl} s` : "") +
    (answer.degraded ? "; degraded answer (STUN only)" : "");
  window.iceResults = { answer, servers: results };
  document.body.dataset.done = "1";
}

main();
