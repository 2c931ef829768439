// SPDX-License-Identifier: UNLICENSED
// Compiled for evmVersion "london" (no PUSH0, no transient storage) so the same bytecode also runs on older private
// PoA chains (Besu/GoQuorum QBFT, Clique) that have not activated Shanghai. See scripts/build-contract.js.
pragma solidity 0.8.30;

/// @title CreditRegistry
/// @notice Shared credit records of a bank consortium. Every member bank writes the current record per
///         (subject, bank); every bank reads all of them. Duplicated or out-of-order submissions are skipped with an
///         event instead of reverting, so a batch is never lost because one of its records was delivered twice.
/// @dev One storage slot per (subject, bank). The record word is owned by the off-chain codec except its low 64 bits,
///      which are the per-(subject, bank) sequence number that orders updates.
contract CreditRegistry {
    /// @notice One credit record as submitted by a member bank.
    /// @param subject Pseudonymized subject identifier (keyed HMAC; never a raw national id).
    /// @param eventId Off-chain event id, carried into the event log for provenance and outbox reconciliation.
    /// @param data Packed record word; its low 64 bits are the sequence number (must be > 0).
    struct Record {
        bytes32 subject;
        bytes16 eventId;
        uint256 data;
    }

    /// @notice Why a record was not applied. The numeric values are part of the event ABI.
    enum SkipReason {
        None,
        Duplicate, // same sequence, same data: a redelivery
        Stale, // older sequence than the stored one
        Conflict, // same sequence, different data: the submitter reused a sequence
        InvalidSequence // sequence 0 is never valid
    }

    /// @notice The account that manages membership.
    address public admin;
    /// @notice The account proposed as the next admin; it becomes admin by calling acceptAdmin().
    address public pendingAdmin;
    /// @notice The bank a member address signs for; zero when the address is not a member.
    mapping(address member => bytes32 bankId) public bankOf;

    address[] private _members;
    /// @dev Position in _members plus one, so zero means "absent"; makes removal O(1).
    mapping(address member => uint256 indexPlusOne) private _memberIndex;
    mapping(bytes32 subject => mapping(bytes32 bankId => uint256 data)) private _records;

    event AdminProposed(address indexed admin, address indexed proposed);
    event AdminChanged(address indexed previousAdmin, address indexed newAdmin);
    event MemberAdded(address indexed member, bytes32 indexed bankId);
    event MemberRemoved(address indexed member, bytes32 indexed bankId);
    /// @notice A record was applied; `data` includes the sequence in its low 64 bits.
    event CreditRecordUpdated(bytes32 indexed subject, bytes32 indexed bankId, bytes16 eventId, uint256 data);
    /// @notice A record was not applied; `reason` is a SkipReason (1 Duplicate, 2 Stale, 3 Conflict, 4 InvalidSequence).
    event CreditRecordSkipped(
        bytes32 indexed subject,
        bytes32 indexed bankId,
        bytes16 eventId,
        uint64 sequence,
        uint64 currentSequence,
        SkipReason reason
    );

    error NotAdmin(address caller);
    error NotPendingAdmin(address caller);
    error NotMember(address caller);
    error AlreadyMember(address member);
    error UnknownMember(address member);
    error ZeroBankId();
    error ZeroAddress();
    error EmptyBatch();

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        _;
    }

    /// @notice The deployer becomes the admin.
    constructor() {
        admin = msg.sender;
        emit AdminChanged(address(0), msg.sender);
    }

    /// @notice First step of an admin transfer; a new proposal replaces the previous one.
    function proposeAdmin(address proposed) external onlyAdmin {
        if (proposed == address(0)) revert ZeroAddress();
        pendingAdmin = proposed;
        emit AdminProposed(msg.sender, proposed);
    }

    /// @notice Second step of an admin transfer, called by the proposed account, so a typo cannot lock the registry.
    function acceptAdmin() external {
        if (msg.sender != pendingAdmin) revert NotPendingAdmin(msg.sender);
        emit AdminChanged(admin, msg.sender);
        admin = msg.sender;
        pendingAdmin = address(0);
    }

    /// @notice Lets `member` submit records on behalf of `bankId`. A bank may have several member addresses.
    function addMember(address member, bytes32 bankId) external onlyAdmin {
        if (member == address(0)) revert ZeroAddress();
        if (bankId == bytes32(0)) revert ZeroBankId();
        if (bankOf[member] != bytes32(0)) revert AlreadyMember(member);
        bankOf[member] = bankId;
        _members.push(member);
        _memberIndex[member] = _members.length;
        emit MemberAdded(member, bankId);
    }

    /// @notice Revokes `member`; records it wrote stay, attributed to its bank.
    function removeMember(address member) external onlyAdmin {
        bytes32 bankId = bankOf[member];
        if (bankId == bytes32(0)) revert UnknownMember(member);
        uint256 index = _memberIndex[member] - 1;
        address last = _members[_members.length - 1];
        _members[index] = last;
        _memberIndex[last] = index + 1;
        _members.pop();
        delete _memberIndex[member];
        delete bankOf[member];
        emit MemberRemoved(member, bankId);
    }

    /// @notice All member addresses and the bank each signs for, in no particular order.
    function members() external view returns (address[] memory addrs, bytes32[] memory bankIds) {
        addrs = _members;
        bankIds = new bytes32[](addrs.length);
        for (uint256 i; i < addrs.length; ++i) bankIds[i] = bankOf[addrs[i]];
    }

    /// @notice The current record word of `subject` written by `bankId`; zero if none.
    function recordOf(bytes32 subject, bytes32 bankId) external view returns (uint256) {
        return _records[subject][bankId];
    }

    /// @notice Applies each record whose sequence is newer than the stored one for (subject, sender's bank) and emits
    ///         CreditRecordUpdated; every other record emits CreditRecordSkipped. Never reverts for a skipped record.
    /// @dev Reverts NotMember for a non-member sender and EmptyBatch for an empty batch (a caller bug).
    function submitBatch(Record[] calldata records) external {
        bytes32 bankId = bankOf[msg.sender];
        if (bankId == bytes32(0)) revert NotMember(msg.sender);
        if (records.length == 0) revert EmptyBatch();
        for (uint256 i; i < records.length; ++i) {
            Record calldata record = records[i];
            bytes32 subject = record.subject;
            uint256 data = record.data;
            uint256 current = _records[subject][bankId];
            uint64 sequence = uint64(data);
            uint64 currentSequence = uint64(current);
            if (sequence > currentSequence) {
                _records[subject][bankId] = data;
                emit CreditRecordUpdated(subject, bankId, record.eventId, data);
            } else {
                emit CreditRecordSkipped(
                    subject,
                    bankId,
                    record.eventId,
                    sequence,
                    currentSequence,
                    _skipReason(sequence, currentSequence, data == current)
                );
            }
        }
    }

    function _skipReason(uint64 sequence, uint64 currentSequence, bool sameData) private pure returns (SkipReason) {
        if (sequence == 0) return SkipReason.InvalidSequence;
        if (sequence < currentSequence) return SkipReason.Stale;
        return sameData ? SkipReason.Duplicate : SkipReason.Conflict;
    }
}
