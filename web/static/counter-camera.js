// The counter's camera scanner: a QR code read by the camera is put in the scan field and sent,
// exactly as a USB scanner would type it. The page works without it (scanner or typing).
import QrScanner from "./vendor/qr-scanner/qr-scanner.min.js";

const field = document.getElementById("code");
const form = document.getElementById("scan-form");
const startButton = document.getElementById("camera-start");
const panel = document.getElementById("camera");
const video = document.getElementById("camera-video");
const status = document.getElementById("camera-status");
let scanner = null;

function stop() {
  if (scanner) {
    scanner.destroy();
    scanner = null;
  }
  panel.hidden = true;
  field.focus();
}

async function start() {
  panel.hidden = false;
  status.textContent = status.dataset.starting;
  scanner = new QrScanner(video, (result) => {
    const text = result.data.trim();
    if (!text) return;
    stop();
    field.value = text;
    form.requestSubmit();
  }, { returnDetailedScanResult: true, preferredCamera: "environment", highlightScanRegion: true });
  try {
    await scanner.start();
    status.textContent = status.dataset.ready;
  } catch (error) {
    status.textContent = status.dataset.failed;
    if (scanner) scanner.destroy();
    scanner = null;
  }
}

startButton.addEventListener("click", start);
document.getElementById("camera-stop").addEventListener("click", stop);
if (await QrScanner.hasCamera()) startButton.hidden = false;
