internal import BillingCore

/// Writes a decision's effects (`Effect`), in order, inside the transaction
/// the decision was made in. Each update is a compare-and-set on the state
/// the decision read; one that finds its row moved refuses the whole
/// transaction (`Rows.expectOneChange`), so a decision is written whole, on
/// the records it was made on, or not at all.
///
/// This is the only place the store writes domain records.
enum UnitOfWork {
    static func apply(_ effects: [Effect], _ db: any SQLSession) throws {
        for effect in effects {
            switch effect {
            case .insertAccount(let account):
                try AccountRepository.insert(db, account)
            case .insertPayer(let payer):
                try AccountRepository.insertPayer(db, payer)
            case .insertPayment(let payment):
                try PaymentRepository.insert(db, payment)
            case .insertInvoice(let invoice):
                try InvoiceRepository.insert(db, invoice)
            case .attachReference(let paymentID, let reference, let redirectURL, let atMs):
                try PaymentRepository.attach(
                    db,
                    paymentID: paymentID,
                    reference: reference,
                    redirectURL: redirectURL,
                    atMs: atMs
                )
            case .finishPayment(let payment):
                try PaymentRepository.finish(db, payment)
            case .insertMethod(let method):
                try MethodRepository.insert(db, method)
            case .updateMethod(let method, let expected):
                try MethodRepository.update(db, method, expected: expected)
            case .ledger(let entry):
                try LedgerRepository.append(db, entry)
            case .insertRenewalOrder(let order):
                try RenewalRepository.insertOrder(db, order)
            case .updateRenewalOrder(let order, let expected):
                try RenewalRepository.updateOrder(db, order, expected: expected)
            case .saveService(let service):
                try RenewalRepository.save(db, service)
            case .autoRenewalAttempt(let service, let next, _):
                try RenewalRepository.scheduleAutoRenewal(db, service.id, nextAttemptAtMs: next)
            case .insertMigrationOrder(let order):
                try MigrationRepository.insert(db, order)
            case .updateMigrationOrder(let order, let expected):
                try MigrationRepository.update(db, order, expected: expected)
            case .insertNotification(let notification):
                try NotificationRepository.insert(db, notification)
            case .payerCustomer(let payerID, let system, let reference):
                try AccountRepository.insertCustomer(db, payerID: payerID, system: system, reference: reference)
            case .rememberKey(let record):
                try IdempotencyRepository.remember(db, record)
            case .event(let accountID, let atMs, let change):
                try EventLog.append(db, accountID: accountID, atMs: atMs, change)
            case .audit(let entry):
                try AuditRepository.append(db, entry)
            }
        }
    }
}
