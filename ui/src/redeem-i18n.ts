// The counter's redemption labels, Korean first; `i18n.ts` hangs them under `redeem`.

import { grouped } from "./format";

export const redeemKo = {
  heading: "포인트 사용",
  scanHint: "회원의 QR 코드(앱, 워치 화면, 회원카드)를 스캐너로 읽으세요.",
  scanned: "QR 코드를 읽었습니다",
  available: "사용 가능 포인트",
  balanceNote: (asOf: string) => `서버 잔액 기준 ${asOf}, 이 단말기의 사용분 반영`,
  kindDynamic: "앱 QR 코드",
  kindCard: "회원카드",
  expires: (time: string) => `코드 유효 시각 ${time}까지`,
  offline: "오프라인 결제: 서버 확인 후 확정됩니다",
  amount: "사용할 금액 (원)",
  limits: (min: number, perTx: number) =>
    `최소 ${grouped(min)}원, 이 단말기에서 한 번에 최대 ${grouped(perTx)}원`,
  pin: "회원카드 비밀번호 (6자리)",
  redeem: "포인트 사용",
  cancel: "취소하고 처음으로",
  done: (amount: number, remaining: number) =>
    `${grouped(amount)}포인트를 사용했습니다. 남은 포인트 ${grouped(remaining)}점.`,
  receipt: "영수증",
  holdId: "거래번호",
  print: "영수증 인쇄",
  printed: "영수증을 프린터로 보냈습니다.",
  voidHold: "이 결제 취소",
  voidConfirm: "한 번 더 누르면 결제를 취소합니다",
  voided: (amount: number) => `결제를 취소했습니다. ${grouped(amount)}포인트를 돌려드렸습니다.`,
  next: "다음 손님",
  settlementHeading: "하루 정산",
  showSettlement: "정산 보기",
  day: "정산할 날짜 (비우면 오늘)",
  exportCsv: "CSV로 저장",
  exported: (path: string) => `정산 파일을 저장했습니다: ${path}`,
  printSettlement: "정산표 인쇄",
  figures: {
    redemptions: "사용 전체",
    voids: "취소",
    posted: "서버 확정",
    pending: "확인 대기",
    rejected: "서버 거절 (다른 방법으로 받으세요)",
  } as Record<string, string>,
  count: (n: number) => `${n}건`,
  won: (n: number) => `${grouped(n)}원`,
  camera: {
    start: "카메라로 스캔",
    stop: "카메라 끄기",
    starting: "카메라를 켜는 중입니다. 잠시 기다려 주세요.",
    looking: (frames: number) =>
      `QR 코드를 찾는 중입니다. 회원의 QR 코드를 카메라 앞에 대 주세요. (화면 ${frames}장 확인)`,
    denied: "카메라를 쓸 수 없습니다(사용 권한이 없습니다). 바코드 스캐너로 찍어 주세요.",
    unavailable:
      "카메라를 쓸 수 없습니다(카메라가 없거나 다른 프로그램이 쓰는 중입니다). 바코드 스캐너로 찍어 주세요.",
  },
};

export type RedeemLabels = typeof redeemKo;

export const redeemEn: RedeemLabels = {
  heading: "Redeem points",
  scanHint: "Scan the member's QR code (app, watch face or member card) with the scanner.",
  scanned: "Code read",
  available: "Points available",
  balanceNote: (asOf: string) => `Server balance of ${asOf}, less what was spent here since`,
  kindDynamic: "App code",
  kindCard: "Member card",
  expires: (time: string) => `Code valid until ${time}`,
  offline: "Offline redemption: confirmed when the server is reached",
  amount: "Amount to spend (won)",
  limits: (min: number, perTx: number) =>
    `At least ${grouped(min)} won, at most ${grouped(perTx)} won at a time here`,
  pin: "Member card PIN (6 digits)",
  redeem: "Redeem",
  cancel: "Cancel and start over",
  done: (amount: number, remaining: number) =>
    `Spent ${grouped(amount)} points. ${grouped(remaining)} points left.`,
  receipt: "Receipt",
  holdId: "Transaction no.",
  print: "Print receipt",
  printed: "The receipt was sent to the printer.",
  voidHold: "Void this redemption",
  voidConfirm: "Press again to void the redemption",
  voided: (amount: number) => `Voided. ${grouped(amount)} points were given back.`,
  next: "Next customer",
  settlementHeading: "Day's settlement",
  showSettlement: "Show settlement",
  day: "Day to settle (empty: today)",
  exportCsv: "Save as CSV",
  exported: (path: string) => `Settlement saved: ${path}`,
  printSettlement: "Print settlement",
  figures: {
    redemptions: "All redemptions",
    voids: "Voided",
    posted: "Confirmed by server",
    pending: "Awaiting server",
    rejected: "Rejected by server (collect another way)",
  },
  count: (n: number) => `${n}`,
  won: (n: number) => `${grouped(n)} won`,
  camera: {
    start: "Scan with camera",
    stop: "Stop the camera",
    starting: "Starting the camera. Please wait.",
    looking: (frames: number) =>
      `Looking for a QR code. Hold the member's code in front of the camera. (${frames} frames checked)`,
    denied: "The camera cannot be used (no permission). Scan with the barcode scanner instead.",
    unavailable:
      "The camera cannot be used (none found, or another program is using it). Scan with the barcode scanner instead.",
  },
};
