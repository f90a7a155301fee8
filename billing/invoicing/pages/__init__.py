"""Invoice pages: the customer's billing page (their invoices, PDFs, the upcoming invoice) and the
staff's invoice list and invoice page (void, mark uncollectible, PDF). Routes in `urls.py`."""
