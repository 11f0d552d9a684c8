// One function per Rust command: the only place the UI names a command. Arguments and results
// are the Rust types, generated into `bindings/`; top-level argument names are camelCase, as
// Tauri maps them onto the commands' snake_case parameters.

import type { ApplicantInput } from "./bindings/ApplicantInput";
import type { CardView } from "./bindings/CardView";
import type { ConfirmedEnrollment } from "./bindings/ConfirmedEnrollment";
import type { ConsentInput } from "./bindings/ConsentInput";
import type { ContactInput } from "./bindings/ContactInput";
import type { Exported } from "./bindings/Exported";
import type { IdentityChecked } from "./bindings/IdentityChecked";
import type { KioskSetup } from "./bindings/KioskSetup";
import type { Lang } from "./bindings/Lang";
import type { MemberView } from "./bindings/MemberView";
import type { OfferRead } from "./bindings/OfferRead";
import type { PairedWatch } from "./bindings/PairedWatch";
import type { Printed } from "./bindings/Printed";
import type { Provisioned } from "./bindings/Provisioned";
import type { ReceiptView } from "./bindings/ReceiptView";
import type { Redeemed } from "./bindings/Redeemed";
import type { Registered } from "./bindings/Registered";
import type { ReplacementAllowed } from "./bindings/ReplacementAllowed";
import type { Scanned } from "./bindings/Scanned";
import type { SettlementView } from "./bindings/SettlementView";
import type { Spoken } from "./bindings/Spoken";
import type { SyncStatus } from "./bindings/SyncStatus";
import type { TerminalInfo } from "./bindings/TerminalInfo";
import type { TicketView } from "./bindings/TicketView";
import type { Voided } from "./bindings/Voided";
import type { WatchChoice } from "./bindings/WatchChoice";
import type { WatchSynced } from "./bindings/WatchSynced";
import type { Invoke } from "./ipc";

/** The commands, over `invoke` (Tauri's, or a stand-in in the tests). */
export function api(invoke: Invoke) {
  return {
    terminalInfo: () => invoke<TerminalInfo>("terminal_info"),
    setLanguage: (a: { language: Lang }) => invoke<Lang>("set_language", a),
    findMember: (a: { memberNo: string }) => invoke<MemberView>("find_member", a),
    scanWatches: () => invoke<WatchChoice[]>("scan_watches"),
    syncWatch: (a: { memberNo: string; address: string; token: string | null }) =>
      invoke<WatchSynced>("sync_watch", a),
    pairWatch: (a: { opId: string; address: string }) => invoke<PairedWatch>("pair_watch", a),
    syncStatus: () => invoke<SyncStatus>("sync_status"),
    sendNow: () => invoke<null>("send_now"),
    scanToken: (a: { token: string }) => invoke<Scanned>("scan_token", a),
    redeem: (a: { token: string; amount: number; pin: string | null }) =>
      invoke<Redeemed>("redeem", a),
    voidHold: (a: { holdId: string }) => invoke<Voided>("void_hold", a),
    holdReceipt: (a: { holdId: string; print: boolean }) => invoke<ReceiptView>("hold_receipt", a),
    daySettlement: (a: { day: string | null }) => invoke<SettlementView>("day_settlement", a),
    exportSettlement: (a: { day: string | null }) => invoke<Exported>("export_settlement", a),
    kioskSetup: () => invoke<KioskSetup>("kiosk_setup"),
    kioskToday: () => invoke<ConfirmedEnrollment[]>("kiosk_today"),
    checkIdentity: (a: { applicant: ApplicantInput }) =>
      invoke<IdentityChecked>("check_identity", a),
    checkConsent: (a: { consents: ConsentInput[] }) => invoke<null>("check_consent", a),
    register: (a: {
      applicant: ApplicantInput;
      consents: ConsentInput[];
      contact: ContactInput | null;
    }) => invoke<Registered>("register", a),
    issueTicket: (a: { applicant: ApplicantInput }) => invoke<TicketView>("issue_ticket", a),
    memberCard: (a: { opId: string }) => invoke<CardView>("member_card", a),
    issueMemberCard: (a: { opId: string; pin: string; pinAgain: string }) =>
      invoke<CardView>("issue_member_card", a),
    printCard: (a: { opId: string }) => invoke<Printed>("print_card", a),
    speak: (a: { text: string; volume: number; speed: number }) => invoke<Spoken>("speak", a),
    readEnrollmentOffer: (a: { text: string }) => invoke<OfferRead>("read_enrollment_offer", a),
    provisionTerminal: (a: { text: string }) => invoke<Provisioned>("provision_terminal", a),
    findCardReplacement: (a: { applicant: ApplicantInput }) =>
      invoke<ReplacementAllowed>("find_card_replacement", a),
    replaceLostCard: (a: { applicant: ApplicantInput; pin: string; pinAgain: string }) =>
      invoke<CardView>("replace_lost_card", a),
    printReplacementCard: (a: { memberNo: string }) => invoke<Printed>("print_replacement_card", a),
  };
}

export type Api = ReturnType<typeof api>;
