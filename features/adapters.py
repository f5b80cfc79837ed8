"""Adapters that map real public data sets onto the ledger contract."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.contract import Ledger, LedgerValidationError, check_ledger

IBM_FILE = "WA_Fn-UseC_-Accounts-Receivable.csv"


def load_ibm_accounts_receivable(path: Path | str) -> Ledger:
    """The IBM Watson 'Accounts Receivable' sample as a contract ledger.

    customer -> client, invoice -> invoice, settlement -> one payment of the full amount. The
    sample's country codes (391, 406, ...) are anonymised numbers, not ISO codes, so they map to
    ISO 3166 user-assigned codes XA, XB, ... in sorted order; the original code is kept in
    `clients.source_country_code`. Amounts carry no currency: USD is assumed. Clients are taken as
    onboarded on their first invoice, and the extraction date is the last settlement.
    """
    path = Path(path)
    if path.is_dir():
        path = path / IBM_FILE
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in ("InvoiceDate", "DueDate", "SettledDate", "PaperlessDate"):
        # The sample writes US dates (m/d/Y); the contract reads ISO dates.
        raw[col] = pd.to_datetime(raw[col], format="%m/%d/%Y").dt.strftime("%Y-%m-%d")

    codes = sorted(raw["countryCode"].unique(), key=int)
    country = {code: f"X{chr(ord('A') + i)}" for i, code in enumerate(codes)}
    first = raw.groupby("customerID")["InvoiceDate"].min()
    client_country = raw.groupby("customerID")["countryCode"].first()
    clients = pd.DataFrame(
        {
            "client_id": first.index,
            "name": first.index,
            "country": client_country.map(country).to_numpy(),
            "industry": "Unknown",
            "registered_capital": "",
            "founded_on": "",
            "onboarded_on": first.to_numpy(),
            "source_country_code": client_country.to_numpy(),
        }
    )
    invoices = pd.DataFrame(
        {
            "invoice_id": raw["invoiceNumber"],
            "client_id": raw["customerID"],
            "issued_on": raw["InvoiceDate"],
            "due_on": raw["DueDate"],
            "amount": raw["InvoiceAmount"],
            "currency": "USD",
            "paid_on": raw["SettledDate"],
            "paid_amount": raw["InvoiceAmount"],
            "disputed": raw["Disputed"].str.strip().str.lower().map({"yes": "true", "no": "false"}),
            "paperless_bill": raw["PaperlessBill"].str.strip().str.lower() == "electronic",
        }
    )
    payments = pd.DataFrame(
        {
            "invoice_id": raw["invoiceNumber"],
            "paid_on": raw["SettledDate"],
            "amount": raw["InvoiceAmount"],
        }
    )
    extracted_on = pd.Timestamp(raw["SettledDate"].max())
    ledger, violations = check_ledger(
        {"clients": clients, "invoices": invoices, "payments": payments}, extracted_on=extracted_on
    )
    if len(violations):
        raise LedgerValidationError(violations)
    return ledger
